/**
 * The byte counter tap: counts the bytes that pass, hands each chunk on unchanged.
 *
 * Buffering/backpressure: a pass-through Transform (see {@link tapStage}); no copies,
 * no per-chunk allocation, at most its highWaterMark buffered on each side.
 */
import type { StageOptions, TransformStage } from './stage.js';
import { tapStage } from './make-stage.js';

/** Options of {@link byteCounter}. */
export interface ByteCounterOptions extends StageOptions {
  /** Stage name. Default `byte-counter`. */
  name?: string;
  /** Bytes buffered on each side before backpressure. Default: Node's. */
  highWaterMark?: number;
}

/** A byte counter: `result` is the total; `bytes` is the running count at any time. */
export interface ByteCounterStage extends TransformStage<number> {
  /** Bytes passed on so far (live; equals the result once the stream finished). */
  readonly bytes: number;
}

const counters = new WeakSet<object>();

/**
 * A tap whose result is the number of bytes that went through it. `runPipeline` reports
 * the first counter's total as `bytes`.
 */
export function byteCounter(opts: ByteCounterOptions = {}): ByteCounterStage {
  let bytes = 0;
  const stage = tapStage({
    ...opts,
    name: opts.name ?? 'byte-counter',
    onChunk: (chunk) => {
      bytes += chunk.length;
    },
    onEnd: () => bytes,
  });
  const counter: ByteCounterStage = {
    ...stage,
    get bytes() {
      return bytes;
    },
  };
  counters.add(counter);
  return counter;
}

/** Whether `stage` was made by {@link byteCounter}. */
export function isByteCounter(stage: object): stage is ByteCounterStage {
  return counters.has(stage);
}
