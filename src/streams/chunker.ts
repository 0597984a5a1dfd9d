/**
 * The fixed-size chunker: bytes in, object-mode {@link Part} frames out, every part
 * exactly its policy's size except the last.
 *
 * Per-part digests (`hashes`, e.g. MD5 for S3's Content-MD5) are updated with each
 * input chunk as the part fills, so a finished part is never read a second time and
 * the hashing cost is spread over the stream instead of stalling it once per part.
 *
 * Buffering/backpressure: the readable side is in object mode with highWaterMark 1, and
 * a write does not complete while a pushed part waits to be read; the chunker itself
 * holds at most one part being assembled (copied once into a buffer of the part's size
 * as its bytes arrive; a part that lies inside one input chunk is a zero-copy view of
 * it). Bound: one part waiting in the readable buffer + one part being assembled +
 * the current input chunk + the writable highWaterMark. With a {@link PartBudget}
 * shared with the consumer, a part is started only when the budget has room, so the
 * parts alive between the two stages are bounded by the budget's limit, and their
 * buffers come from the budget, which reuses a released part's buffer.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { Duplex } from 'node:stream';
import { UsageError } from '../errors.js';
import type { PartBudget } from './part-budget.js';
import type { StageOptions, TransformStage } from './stage.js';
import { checkHighWaterMark, resultTransformStage } from './make-stage.js';

/** Digests the chunker can compute of each part while it fills. */
export type PartHashAlgorithm = 'md5' | 'sha256';

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
  /** Digests of `data` for the chunker's `hashes`, computed as its bytes arrived. */
  readonly digests?: Readonly<Partial<Record<PartHashAlgorithm, Buffer>>>;
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
  /**
   * Digests to compute of every part ({@link Part.digests}), updated per input chunk
   * as the part fills. Default none.
   */
  hashes?: readonly PartHashAlgorithm[];
  /**
   * Parts alive at once, shared with the consumer that releases them (see
   * {@link PartBudget}): a part's unit is acquired (keyed by its part number) before
   * its first byte is taken in. Default: no limit beyond the stream buffers.
   */
  budget?: PartBudget;
}

/** A complete part's bytes and digests. */
interface Assembled {
  readonly data: Buffer;
  readonly digests: Partial<Record<PartHashAlgorithm, Buffer>> | undefined;
}

/** Settings of a {@link Chunker} beyond its part sizes. */
interface ChunkerSettings {
  name: string;
  maxParts: number;
  hwm: number | undefined;
  hashes: readonly PartHashAlgorithm[];
  budget: PartBudget | undefined;
}

class Chunker extends Duplex {
  parts = 0;
  bytes = 0;
  readonly #sizeFor: (index: number) => number;
  readonly #s: ChunkerSettings;
  /**
   * The part being assembled: its first piece (a view, while it is the only one), its
   * buffer (once a second piece came), bytes in it, its hashers.
   */
  #first: Buffer | undefined;
  #part: Buffer | undefined;
  #filled = 0;
  #hashers: Hash[] = [];
  /** Where the next part stands: size not fixed yet, size fixed (waiting for the budget), started. */
  #phase: 'idle' | 'sized' | 'started' = 'idle';
  #waiting = false;
  /** A complete part not yet known to be the last (no byte after it seen yet). */
  #held: Assembled | undefined;
  #size = 0;
  /** The input chunk being cut, where to go on, and its write callback. */
  #chunk: Buffer | undefined;
  #pos = 0;
  #callback: ((err?: Error | null) => void) | undefined;
  #cutting = false;

  constructor(sizeFor: (index: number) => number, settings: ChunkerSettings) {
    super({
      readableObjectMode: true,
      readableHighWaterMark: 1,
      decodeStrings: true,
      ...(settings.hwm === undefined ? {} : { writableHighWaterMark: settings.hwm }),
    });
    this.#sizeFor = sizeFor;
    this.#s = settings;
  }

  /** Bytes held inside the chunker (assembled or complete, not yet pushed). */
  get pendingBytes(): number {
    return this.#filled + (this.#held?.data.length ?? 0);
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
    } else if (this.#filled > 0 || this.parts === 0) {
      // An empty stream still yields one (empty) last part: a consumer always sees `last`.
      this.#emit(this.#finish(Buffer.alloc(0)), true);
    }
    this.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#first = undefined;
    this.#part = undefined;
    this.#hashers = [];
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

  /** True when the chunk is used up; false when waiting for `_read` or the budget (or failed). */
  #cutLoop(): boolean {
    let chunk = this.#chunk;
    while (chunk && !this.#waiting) {
      if (this.#held) {
        // More data follows, so the held part was not the last.
        const held = this.#held;
        this.#held = undefined;
        if (!this.#emit(held, false)) return false;
        continue;
      }
      if (this.#pos >= chunk.length) break;
      if (this.#phase !== 'started' && !this.#startPart(this.#callback)) return false;
      const need = this.#size - this.#filled;
      const avail = chunk.length - this.#pos;
      if (avail < need) {
        this.#append(this.#pos === 0 ? chunk : chunk.subarray(this.#pos));
        break;
      }
      const part = this.#finish(chunk.subarray(this.#pos, this.#pos + need));
      this.#pos += need;
      if (this.#pos >= chunk.length) {
        this.#held = part;
        break;
      }
      if (!this.#emit(part, false)) return false;
      // A synchronous consumer may have destroyed the stream during push().
      chunk = this.#chunk;
    }
    return chunk !== undefined && !this.#waiting;
  }

  /**
   * Fixes the size of the next part (`this.parts`, once) and takes its budget unit;
   * false when it must wait for the budget, or may not exist (then the write fails).
   */
  #startPart(callback: ((err?: Error | null) => void) | undefined): boolean {
    const index = this.parts;
    if (this.#phase === 'idle') {
      const err = this.#sizeError(index);
      if (err) {
        this.#chunk = undefined;
        this.#callback = undefined;
        if (callback) callback(err);
        else this.destroy(err);
        return false;
      }
      this.#phase = 'sized';
    }
    const wait = this.#s.budget?.acquire(index + 1);
    if (wait) {
      this.#waiting = true;
      void wait.then(() => {
        this.#waiting = false;
        if (!this.destroyed) this.#cut();
      });
      return false;
    }
    this.#phase = 'started';
    this.#hashers = this.#s.hashes.map((a) => createHash(a));
    return true;
  }

  /** Why part `index` may not exist (sets its size when it may). */
  #sizeError(index: number): UsageError | undefined {
    const name = this.#s.name;
    if (index >= this.#s.maxParts) {
      return new UsageError(
        `${name}: stream longer than ${this.#s.maxParts} parts (${this.bytes} bytes so far): use a larger part size`,
      );
    }
    const size = this.#sizeFor(index);
    if (!(Number.isSafeInteger(size) && size > 0)) {
      return new UsageError(
        `${name}: part size for part ${index} is ${size}, not a positive integer`,
      );
    }
    this.#size = size;
    return undefined;
  }

  /**
   * Adds `piece` to the part being assembled and hashes it: the first piece is kept
   * as a view, and copied into a buffer of the part's size only when a second follows.
   */
  #append(piece: Buffer): void {
    for (const h of this.#hashers) h.update(piece);
    if (this.#filled === 0) this.#first = piece;
    else {
      if (this.#part === undefined) {
        const budget = this.#s.budget;
        this.#part = budget
          ? budget.bufferFor(this.parts + 1, this.#size)
          : Buffer.allocUnsafeSlow(this.#size);
        this.#first!.copy(this.#part, 0);
        this.#first = undefined;
      }
      piece.copy(this.#part, this.#filled);
    }
    this.#filled += piece.length;
  }

  /**
   * The part completed by its last `piece` (may be empty): a view when it lies in one
   * input chunk, else the assembled buffer; with its digests. Resets for the next.
   */
  #finish(piece: Buffer): Assembled {
    if (this.#phase !== 'started') this.#hashers = this.#s.hashes.map((a) => createHash(a));
    if (piece.length > 0 || this.#filled === 0) this.#append(piece);
    const data = this.#part === undefined ? this.#first! : this.#part.subarray(0, this.#filled);
    const digests =
      this.#hashers.length === 0
        ? undefined
        : Object.fromEntries(this.#s.hashes.map((a, i) => [a, this.#hashers[i]!.digest()]));
    this.#part = undefined;
    this.#first = undefined;
    this.#filled = 0;
    this.#hashers = [];
    this.#phase = 'idle';
    return { data, digests };
  }

  /** Pushes a part; false when the reader is full and cutting must wait for `_read`. */
  #emit({ data, digests }: Assembled, last: boolean): boolean {
    const index = this.parts;
    const part: Part = {
      index,
      partNumber: index + 1,
      offset: this.bytes,
      data,
      last,
      ...(digests ? { digests } : {}),
    };
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
  const hashes = opts.hashes ?? [];
  for (const a of hashes) {
    if (a !== 'md5' && a !== 'sha256') throw new UsageError(`${name}: unknown hash ${String(a)}`);
  }
  const stream = new Chunker(sizeFor, {
    name,
    maxParts: maxParts ?? Infinity,
    hwm: opts.highWaterMark,
    hashes,
    budget: opts.budget,
  });
  return resultTransformStage(
    name,
    stream,
    () => ({ parts: stream.parts, bytes: stream.bytes }),
    opts,
  );
}

/** The chunker's stream type, for tests and sinks that inspect `pendingBytes`. */
export type ChunkerStream = Chunker;
