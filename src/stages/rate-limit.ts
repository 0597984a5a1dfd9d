/**
 * The rate limit stage (`--bwlimit`): hands bytes on unchanged, at no more
 * than `bytesPerSecond` on average since its first byte.
 *
 * Buffering/backpressure: a pass-through Transform; each chunk is handed on in
 * slices of at most a tenth of a second's worth of bytes, and after each slice
 * the stage waits until the bytes handed on so far are due at the set rate
 * before taking more, so upstream is held back by ordinary backpressure and
 * at most one slice plus the Transform's buffers are held. Time comes from an
 * injected {@link RateClock} (tests use a fake one); a destroyed stream cancels
 * its wait.
 *
 * {@link parseRate} reads a rate as rsync's `--bwlimit` does.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { UsageError } from '../errors.js';
import { resultTransformStage } from '../streams/make-stage.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** Where the stage reads the time and waits. */
export interface RateClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms`; rejects when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** The process's clock: `performance.now()` and a timer. */
export const systemClock: RateClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }),
};

/** Options of {@link rateLimit}. */
export interface RateLimitOptions extends StageOptions {
  /** Most bytes per second handed on, on average since the first byte. */
  bytesPerSecond: number;
  /** Default {@link systemClock}. */
  clock?: RateClock;
  /** Stage name. Default `rate-limit`. */
  name?: string;
}

const UNITS: Record<string, number> = { '': 1024, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * A `--bwlimit` value in bytes per second, as rsync reads it: a number
 * (fractions allowed) of KiB/s by default, or with a suffix `B`, `K`, `M`, `G`
 * (1024-based; `KiB`, `MiB`, `GiB` too, and `KB`, `MB`, `GB` for 1000-based).
 * `0` means no limit (undefined). Anything else is a UsageError.
 */
export function parseRate(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([bkmg])(ib|b)?)?$/i.exec(text.trim());
  const unit = (m?.[2] ?? '').toLowerCase();
  const base = unit !== '' && unit !== 'b' && m?.[3]?.toLowerCase() === 'b' ? 1000 : 1024;
  const factor = unit === 'b' || unit === '' ? UNITS[unit]! : base ** ' kmg'.indexOf(unit);
  const bytes = m ? Math.round(Number(m[1]) * factor) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new UsageError(
      `--bwlimit ${JSON.stringify(text)}: expected a rate such as 500 (KiB/s), 1.5M or 10G`,
    );
  }
  return bytes === 0 ? undefined : bytes;
}

class RateLimitTransform extends Transform {
  bytes = 0;
  readonly #rate: number;
  readonly #clock: RateClock;
  readonly #slice: number;
  readonly #cancel = new AbortController();
  #start: number | undefined;

  constructor(rate: number, clock: RateClock) {
    super();
    this.#rate = rate;
    this.#clock = clock;
    this.#slice = Math.max(1, Math.floor(rate / 10));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#pass(chunk).then(() => callback(), callback);
  }

  async #pass(chunk: Buffer): Promise<void> {
    this.#start ??= this.#clock.now();
    for (let at = 0; at < chunk.length; at += this.#slice) {
      const slice = chunk.subarray(at, at + this.#slice);
      this.push(slice);
      this.bytes += slice.length;
      const due = this.#start + (this.bytes * 1000) / this.#rate;
      const wait = due - this.#clock.now();
      if (wait > 0) await this.#clock.sleep(wait, this.#cancel.signal);
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#cancel.abort();
    callback(err);
  }
}

/** A stage that limits the rate bytes pass at (see the module header); result: bytes passed. */
export function rateLimit(opts: RateLimitOptions): TransformStage<number> {
  const name = opts.name ?? 'rate-limit';
  if (!(Number.isFinite(opts.bytesPerSecond) && opts.bytesPerSecond > 0)) {
    throw new UsageError(`${name}: bytesPerSecond must be a positive number`);
  }
  const stream = new RateLimitTransform(opts.bytesPerSecond, opts.clock ?? systemClock);
  return resultTransformStage(name, stream, () => stream.bytes, opts);
}
