/**
 * Builders for transform stages whose result is a value computed when the bytes have
 * all gone through (a count, a digest, a part count).
 *
 * Buffering/backpressure: {@link tapStage} builds a pass-through `Transform` in byte
 * mode that hands each chunk on unchanged (same Buffer, no copy) after one callback;
 * it buffers at most its `highWaterMark` on each side, like any Transform, and the
 * consumer's pace governs the producer through the ordinary stream backpressure.
 */
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { UsageError } from '../errors.js';
import {
  destroyOnAbort,
  handled,
  streamDone,
  type StageOptions,
  type TransformStage,
} from './stage.js';

/**
 * Makes a {@link TransformStage} from any Duplex whose result is `valueAtEnd()`, called
 * once after the stream has completely finished (writable side finished, readable side
 * ended). The result rejects, and `valueAtEnd` is never called, when the stream failed
 * or was destroyed first. Aborting `opts.signal` destroys the stream with an AbortedError.
 */
export function resultTransformStage<R>(
  name: string,
  stream: Duplex,
  valueAtEnd: () => R,
  opts: StageOptions = {},
): TransformStage<R> {
  destroyOnAbort(stream, opts.signal);
  const result = handled(streamDone(stream).then(valueAtEnd));
  return { kind: 'transform', name, stream, result };
}

/** Options of {@link tapStage}. */
export interface TapStageOptions<R> extends StageOptions {
  /** Stage name, e.g. `byte-counter`. */
  name: string;
  /**
   * Sees every chunk, in order, before it is passed on. Must not modify or keep a
   * reference it later mutates: the same Buffer goes downstream. A throw fails the stage.
   */
  onChunk: (chunk: Buffer) => void;
  /** Called once after the last chunk; its value (or its throw) becomes the result. */
  onEnd: () => R;
  /** Bytes buffered on each side before backpressure. Default: Node's (16 KiB on Node 20). */
  highWaterMark?: number;
}

class TapTransform<R> extends Transform {
  value: R | undefined;
  readonly #onChunk: (chunk: Buffer) => void;
  readonly #onEnd: () => R;

  constructor(opts: TapStageOptions<R>) {
    super(opts.highWaterMark === undefined ? {} : { highWaterMark: opts.highWaterMark });
    this.#onChunk = opts.onChunk;
    this.#onEnd = opts.onEnd;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#onChunk(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.value = this.#onEnd();
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }
}

/**
 * Builds a pass-through {@link TransformStage} in byte mode: every chunk goes to
 * `onChunk` and then downstream unchanged; `onEnd()` runs at flush and its value is the
 * result once the stream has finished. The stream fails when either callback throws.
 */
export function tapStage<R>(opts: TapStageOptions<R>): TransformStage<R> {
  if (typeof opts.onChunk !== 'function' || typeof opts.onEnd !== 'function') {
    throw new UsageError(`${opts.name}: onChunk and onEnd must be functions`);
  }
  checkHighWaterMark(opts.name, opts.highWaterMark);
  const stream = new TapTransform(opts);
  return resultTransformStage(opts.name, stream, () => stream.value as R, opts);
}

/** Throws a UsageError unless `hwm` is undefined or a non-negative safe integer. */
export function checkHighWaterMark(name: string, hwm: number | undefined): void {
  if (hwm !== undefined && !(Number.isSafeInteger(hwm) && hwm >= 0)) {
    throw new UsageError(`${name}: highWaterMark must be a non-negative integer, got ${hwm}`);
  }
}
