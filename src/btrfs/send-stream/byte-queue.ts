/**
 * A queue of input chunks addressed by absolute stream offset, for stages that
 * hold bytes back until a command boundary and then release or replace them.
 * Holds references to the chunks, never copies them; releasing returns slices.
 *
 * Memory: only the chunks still (partly) queued are referenced. A released
 * chunk's slot is cleared at once, so a consumer that never empties the queue
 * completely (a command always spans the next chunk) does not pin every chunk
 * it has seen: what stays alive is bounded by `size` plus one partly released
 * chunk, independent of the stream's length.
 */

/** Bytes received but not yet released, addressed by absolute stream offset. */
export class ByteQueue {
  #parts: (Buffer | undefined)[] = [];
  /** Index of the first live part: avoids O(n) `shift()` when many tiny chunks are held. */
  #head = 0;
  /** Absolute offset of the first byte still queued. */
  #start = 0;
  /** Absolute offset just past the last byte queued. */
  #end = 0;

  /** Offset of the first queued byte (everything before it was taken or dropped). */
  get start(): number {
    return this.#start;
  }

  /** Offset just past the last queued byte (= bytes received). */
  get end(): number {
    return this.#end;
  }

  /** Bytes currently held. */
  get size(): number {
    return this.#end - this.#start;
  }

  /** Appends a chunk (kept by reference). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#parts.push(chunk);
    this.#end += chunk.length;
  }

  /**
   * Removes and returns the bytes from `start` up to (excluding) `offset`, as
   * slices of the queued chunks. `offset` must lie in `[start, end]`.
   */
  take(offset: number): Buffer[] {
    const out: Buffer[] = [];
    this.#advance(offset, out);
    return out;
  }

  /** Discards the bytes from `start` up to (excluding) `offset`. */
  drop(offset: number): void {
    this.#advance(offset, undefined);
  }

  #advance(offset: number, out: Buffer[] | undefined): void {
    if (offset < this.#start || offset > this.#end) {
      throw new RangeError(`ByteQueue: offset ${offset} outside [${this.#start}, ${this.#end}]`);
    }
    let need = offset - this.#start;
    while (need > 0) {
      const head = this.#parts[this.#head]!;
      if (head.length <= need) {
        // Clear the slot: a reference left behind would pin the chunk (and, for a
        // subarray, its whole parent buffer) until the array is compacted.
        this.#parts[this.#head] = undefined;
        this.#head++;
        out?.push(head);
        need -= head.length;
      } else {
        out?.push(head.subarray(0, need));
        this.#parts[this.#head] = head.subarray(need);
        need = 0;
      }
    }
    if (this.#head === this.#parts.length) {
      this.#parts = [];
      this.#head = 0;
    } else if (this.#head >= 64 && this.#head * 2 > this.#parts.length) {
      this.#parts = this.#parts.slice(this.#head);
      this.#head = 0;
    }
    this.#start = offset;
  }
}
