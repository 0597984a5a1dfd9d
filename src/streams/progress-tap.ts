/**
 * The progress tap: reports bytes, rate and ETA to a callback, throttled, and once more
 * at the end; hands each chunk on unchanged.
 *
 * Buffering/backpressure: a pass-through Transform (see {@link tapStage}); no copies.
 * Throttling costs one clock read per chunk; no timers, so nothing is left running when
 * the stream is destroyed, and no event is emitted while no bytes flow.
 */
import { performance } from 'node:perf_hooks';
import { UsageError } from '../errors.js';
import type { StageOptions, TransformStage } from './stage.js';
import { tapStage } from './make-stage.js';

/** One progress report. */
export interface Progress {
  /** Bytes passed so far. */
  bytes: number;
  /** Expected total bytes, when the caller gave one. */
  total?: number;
  /** Average rate since the first byte, in bytes per second (0 before time has passed). */
  rate: number;
  /** Milliseconds since the first byte went through (0 before it). */
  elapsedMs: number;
  /** Estimated milliseconds left, from `total` and `rate`; absent without either. */
  etaMs?: number;
  /** True on the final report, emitted once after the last byte. */
  done: boolean;
}

/** Options of {@link progressTap}. */
export interface ProgressTapOptions extends StageOptions {
  /** Receives reports; a throw fails the stage. Called synchronously on the data path: keep it cheap. */
  onProgress: (progress: Progress) => void;
  /** Expected total bytes (an estimate is fine: `bytes` may exceed it). */
  total?: number;
  /** Least milliseconds between two reports. Default 500. */
  intervalMs?: number;
  /** Stage name. Default `progress`. */
  name?: string;
  /** Bytes buffered on each side before backpressure. Default: Node's. */
  highWaterMark?: number;
}

/** The {@link Progress} of `bytes` moved in `elapsedMs`, towards `total` when known. */
export function progressReport(
  bytes: number,
  elapsedMs: number,
  total: number | undefined,
  done: boolean,
): Progress {
  const rate = elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0;
  const p: Progress = { bytes, rate, elapsedMs, done };
  if (total !== undefined) {
    p.total = total;
    if (done) p.etaMs = 0;
    else if (rate > 0) p.etaMs = (Math.max(0, total - bytes) * 1000) / rate;
  }
  return p;
}

/**
 * A tap that calls `onProgress` at most every `intervalMs` while bytes flow, and exactly
 * once with `done: true` after the last byte (also for an empty stream). Its result is
 * that final report.
 */
export function progressTap(opts: ProgressTapOptions): TransformStage<Progress> {
  const name = opts.name ?? 'progress';
  const { onProgress, total } = opts;
  const intervalMs = opts.intervalMs ?? 500;
  if (typeof onProgress !== 'function') {
    throw new UsageError(`${name}: onProgress must be a function`);
  }
  if (total !== undefined && !(Number.isFinite(total) && total >= 0)) {
    throw new UsageError(`${name}: total must be a non-negative number, got ${total}`);
  }
  if (!(Number.isFinite(intervalMs) && intervalMs >= 0)) {
    throw new UsageError(`${name}: intervalMs must be a non-negative number, got ${intervalMs}`);
  }

  let bytes = 0;
  let start = -1;
  let last = 0;
  const report = (now: number, done: boolean): Progress =>
    progressReport(bytes, start < 0 ? 0 : now - start, total, done);

  return tapStage({
    ...opts,
    name,
    onChunk: (chunk) => {
      const now = performance.now();
      if (start < 0) {
        start = now;
        last = now;
      }
      bytes += chunk.length;
      if (now - last >= intervalMs) {
        last = now;
        onProgress(report(now, false));
      }
    },
    onEnd: () => {
      const final = report(performance.now(), true);
      onProgress(final);
      return final;
    },
  });
}
