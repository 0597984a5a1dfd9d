/**
 * The fixed-size chunker: bytes in, object-mode {@link Part} frames out, every part
 * exactly its policy's size except the last.
 *
 * Buffering/backpressure: the readable side is in object mode with highWaterMark 1, and
 * a write does not complete while a pushed part waits to be read; the chunker itself
 * holds at most one part being assembled (its input chunks as a list, concatenated once
 * when the part is complete; a part that lies inside one input chunk is a zero-copy view
 * of it). Bound: one part waiting in the readable buffer + one part being assembled +
 * the current input chunk + the writable highWaterMark.
 */
import { Duplex } from 'node:stream';
import { UsageError } from '../errors.js';
import type { StageOptions, TransformStage } from './stage.js';
import { checkHighWaterMark, resultTransformStage } from './make-stage.js';

/** One part of the chunked stream. */
export interface Part {
  /** 0-based position of the part. */
  readonly index: number;
  /** 1-based part number (`index + 1`), as S3 multipart numbers parts. */
  readonly partNumber: number;
  /** Byte offset of the part's first byte in the whole stream. */
  readonly offset: number;
  /** The part's bytes. Not to be mutated: it may be a view of an upstream chunk. */
  readonly data: Buffer;
  /** True on the final part, and only there. */
  readonly last: boolean;
}

/** What the chunker's `result` reports. */
export interface ChunkerResult {
  /** Number of parts emitted. */
  parts: number;
  /** Total bytes. */
  bytes: number;
}

/** 1 KiB, 1 MiB, … in bytes. */
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** Options of {@link growingPartSize}. */
export interface GrowingPartSizeOptions {
  /** Size of the first parts, bytes. */
  partSize: number;
  /** Most parts a stream may have. Default 10,000 (S3). */
  maxParts?: number;
  /** Largest stream that must fit in `maxParts` parts, bytes. Default 5 TiB (S3's object limit). */
  maxBytes?: number;
  /** Largest part, bytes; growth stops there. Default 5 GiB (S3). */
  maxPartSize?: number;
}

/**
 * The growth policy for streams of unknown length: part `i` has
 * `min(maxPartSize, partSize × 2^floor(i / step))` bytes, where `step` is the LARGEST
 * number of parts per doubling that still fits `maxBytes` in `maxParts` parts. So the
 * part size stays at `partSize` as long as it can (no growth at all when
 * `partSize × maxParts ≥ maxBytes`), memory grows only for streams that need it, and
 * any stream up to `maxBytes` ends within `maxParts` parts.
 *
 * Example: 100 MiB parts, S3 defaults → `step` = 2,195: parts stay 100 MiB up to
 * ~214 GiB, then 200 MiB, 400 MiB, 800 MiB, 1,600 MiB; 5 MiB parts → `step` = 997.
 * Throws a UsageError when no step can reach `maxBytes` (`maxPartSize × maxParts` too small).
 */
export function growingPartSize(opts: GrowingPartSizeOptions): (index: number) => number {
  const { partSize, maxParts = 10_000, maxBytes = 5 * TiB, maxPartSize = 5 * GiB } = opts;
  for (const [key, v] of Object.entries({ partSize, maxParts, maxBytes, maxPartSize })) {
    if (!(Number.isSafeInteger(v) && v > 0)) {
      throw new UsageError(`part size policy: ${key} must be a positive integer, got ${v}`);
    }
  }
  if (partSize > maxPartSize) {
    throw new UsageError(`part size ${partSize} exceeds the largest part size ${maxPartSize}`);
  }
  const sizeAt = (step: number, i: number) =>
    Math.min(maxPartSize, partSize * 2 ** Math.floor(i / step));
  const capacity = (step: number) => {
    let total = 0;
    for (let first = 0; first < maxParts; first += step) {
      total += Math.min(step, maxParts - first) * sizeAt(step, first);
    }
    return total;
  };
  if (capacity(1) < maxBytes) {
    throw new UsageError(
      `${maxParts} parts of at most ${maxPartSize} bytes cannot hold ${maxBytes} bytes`,
    );
  }
  // capacity() does not increase with step: find the largest step that still fits.
  let lo = 1;
  let hi = maxParts;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (capacity(mid) >= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  const step = lo;
  return (index) => sizeAt(step, index);
}

/** Options of {@link chunker}. */
export interface ChunkerOptions extends StageOptions {
  /**
   * Bytes per part (of the first parts when the size grows). Required. The chunker
   * enforces no minimum: a sink with one (S3: 5 MiB) validates it.
   */
  partSize: number;
  /**
   * Size of part `index` (0-based), bytes, a positive integer; overrides the growth
   * policy. Called once per part, in order.
   */
  partSizeFor?: (index: number) => number;
  /**
   * Most parts allowed; more data fails the stage with a UsageError. Without
   * `partSizeFor`, setting it turns on {@link growingPartSize} (with `maxBytes`,
   * `maxPartSize`), so streams up to `maxBytes` fit. Default: unlimited, fixed size.
   */
  maxParts?: number;
  /** See {@link GrowingPartSizeOptions.maxBytes}. Default 5 TiB. */
  maxBytes?: number;
  /** See {@link GrowingPartSizeOptions.maxPartSize}. Default 5 GiB. */
  maxPartSize?: number;
  /** Bytes the writable side buffers before backpressure. Default: Node's (16 KiB). */
  highWaterMark?: number;
  /** Stage name. Default `chunker`. */
  name?: string;
}

class Chunker extends Duplex {
  parts = 0;
  bytes = 0;
  readonly #sizeFor: (index: number) => number;
  readonly #maxParts: number;
  readonly #name: string;
  /** Chunks of the part being assembled, and their total length. */
  #list: Buffer[] = [];
  #listBytes = 0;
  /** A complete part not yet known to be the last (no byte after it seen yet). */
  #held: Buffer | undefined;
  #size = 0;
  /** The input chunk being cut, where to go on, and its write callback. */
  #chunk: Buffer | undefined;
  #pos = 0;
  #callback: ((err?: Error | null) => void) | undefined;
  #cutting = false;

  constructor(name: string, sizeFor: (index: number) => number, maxParts: number, hwm?: number) {
    super({
      readableObjectMode: true,
      readableHighWaterMark: 1,
      decodeStrings: true,
      ...(hwm === undefined ? {} : { writableHighWaterMark: hwm }),
    });
    this.#name = name;
    this.#sizeFor = sizeFor;
    this.#maxParts = maxParts;
  }

  /** Bytes held inside the chunker (assembled or complete, not yet pushed). */
  get pendingBytes(): number {
    return this.#listBytes + (this.#held?.length ?? 0);
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (err?: Error | null) => void,
  ): void {
    this.#chunk = chunk;
    this.#pos = 0;
    this.#callback = callback;
    this.#cut();
  }

  override _read(): void {
    if (this.#chunk) this.#cut();
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.#held) {
      this.#emit(this.#held, true);
      this.#held = undefined;
    } else if (this.#listBytes > 0 || this.parts === 0) {
      // An empty stream still yields one (empty) last part: a consumer always sees `last`.
      this.#emit(this.#take(), true);
    }
    this.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#list = [];
    this.#held = undefined;
    this.#chunk = undefined;
    this.#callback = undefined;
    callback(err);
  }

  /** Cuts the current input chunk into parts until it is used up or the reader is full. */
  #cut(): void {
    if (this.#cutting) return;
    this.#cutting = true;
    let usedUp = false;
    try {
      usedUp = this.#cutLoop();
    } finally {
      this.#cutting = false;
    }
    if (!usedUp) return;
    const callback = this.#callback;
    this.#chunk = undefined;
    this.#callback = undefined;
    // Outside the guard: the callback may start the next _write synchronously.
    callback?.();
  }

  /** True when the chunk is used up; false when waiting for `_read` (or failed). */
  #cutLoop(): boolean {
    let chunk = this.#chunk;
    while (chunk) {
      if (this.#held) {
        // More data follows, so the held part was not the last.
        const held = this.#held;
        this.#held = undefined;
        if (!this.#emit(held, false)) return false;
        continue;
      }
      if (this.#pos >= chunk.length) break;
      if (this.#listBytes === 0 && !this.#startPart(this.#callback)) return false;
      const need = this.#size - this.#listBytes;
      const avail = chunk.length - this.#pos;
      if (avail < need) {
        this.#list.push(this.#pos === 0 ? chunk : chunk.subarray(this.#pos));
        this.#listBytes += avail;
        break;
      }
      this.#list.push(chunk.subarray(this.#pos, this.#pos + need));
      this.#listBytes += need;
      this.#pos += need;
      const data = this.#take();
      if (this.#pos >= chunk.length) {
        this.#held = data;
        break;
      }
      if (!this.#emit(data, false)) return false;
      // A synchronous consumer may have destroyed the stream during push().
      chunk = this.#chunk;
    }
    return chunk !== undefined;
  }

  /** Fixes the size of the next part (`this.parts`); false, and fails the write, when it may not exist. */
  #startPart(callback: ((err?: Error | null) => void) | undefined): boolean {
    const index = this.parts;
    let err: UsageError | undefined;
    if (index >= this.#maxParts) {
      err = new UsageError(
        `${this.#name}: stream longer than ${this.#maxParts} parts (${this.bytes} bytes so far): use a larger part size`,
      );
    } else {
      const size = this.#sizeFor(index);
      if (!(Number.isSafeInteger(size) && size > 0)) {
        err = new UsageError(
          `${this.#name}: part size for part ${index} is ${size}, not a positive integer`,
        );
      } else this.#size = size;
    }
    if (!err) return true;
    this.#chunk = undefined;
    this.#callback = undefined;
    if (callback) callback(err);
    else this.destroy(err);
    return false;
  }

  /** The assembled part's bytes: one concat for several chunks, a view for one. */
  #take(): Buffer {
    const list = this.#list;
    const data = list.length === 1 ? (list[0] as Buffer) : Buffer.concat(list, this.#listBytes);
    this.#list = [];
    this.#listBytes = 0;
    return data;
  }

  /** Pushes a part; false when the reader is full and cutting must wait for `_read`. */
  #emit(data: Buffer, last: boolean): boolean {
    const index = this.parts;
    const part: Part = { index, partNumber: index + 1, offset: this.bytes, data, last };
    this.parts = index + 1;
    this.bytes += data.length;
    return this.push(part);
  }
}

/**
 * A transform stage that cuts bytes into {@link Part} frames (object mode), in order,
 * each exactly `partSizeFor(index)` bytes (default: `partSize`, or the
 * {@link growingPartSize} policy when `maxParts` is set) except the last, which is
 * shorter or equal and has `last: true`. An empty stream yields one empty last part.
 * Memory bound: see the file header (about two parts plus the input highWaterMark).
 * Result: parts and bytes, once the stream finished.
 */
export function chunker(opts: ChunkerOptions): TransformStage<ChunkerResult> {
  const name = opts.name ?? 'chunker';
  const { partSize, partSizeFor, maxParts } = opts;
  if (!(Number.isSafeInteger(partSize) && partSize > 0)) {
    throw new UsageError(`${name}: partSize must be a positive integer, got ${partSize}`);
  }
  if (maxParts !== undefined && !(Number.isSafeInteger(maxParts) && maxParts > 0)) {
    throw new UsageError(`${name}: maxParts must be a positive integer, got ${maxParts}`);
  }
  if (partSizeFor !== undefined && typeof partSizeFor !== 'function') {
    throw new UsageError(`${name}: partSizeFor must be a function`);
  }
  checkHighWaterMark(name, opts.highWaterMark);
  let sizeFor: (index: number) => number = () => partSize;
  if (partSizeFor) sizeFor = partSizeFor;
  else if (maxParts !== undefined) {
    sizeFor = growingPartSize({
      partSize,
      maxParts,
      ...(opts.maxBytes === undefined ? {} : { maxBytes: opts.maxBytes }),
      ...(opts.maxPartSize === undefined ? {} : { maxPartSize: opts.maxPartSize }),
    });
  }
  const stream = new Chunker(name, sizeFor, maxParts ?? Infinity, opts.highWaterMark);
  return resultTransformStage(
    name,
    stream,
    () => ({ parts: stream.parts, bytes: stream.bytes }),
    opts,
  );
}

/** The chunker's stream type, for tests and sinks that inspect `pendingBytes`. */
export type ChunkerStream = Chunker;
