/**
 * Runs a chain of stages: one source, any transforms, one sink, wired with `pipeline`
 * from `node:stream/promises`. Adjacent mergeable stages (the send-stream parsing
 * stages) first become one stream, so they share one parse (see mergeable.ts).
 *
 * Buffering/backpressure: adds none of its own; each stage buffers what its streams'
 * highWaterMarks allow and Node's pipeline carries backpressure from the sink back to
 * the source. Teardown: the first failure (or an abort) destroys every stage's stream;
 * the call settles only after every stage's `result` has settled.
 */
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { AbortedError, UsageError } from '../errors.js';
import { isByteCounter } from './byte-counter.js';
import { mergeAdjacent } from './mergeable.js';
import type { SinkStage, SourceStage, Stage, TransformStage } from './stage.js';

/** What {@link runPipeline} accepts: a source, any number of transforms, a sink. */
export type PipelineStages = readonly [
  SourceStage<unknown>,
  ...TransformStage<unknown>[],
  SinkStage<unknown>,
];

/** The tuple of result types of a stage tuple, e.g. `[void, number, string]`. */
export type StageResults<S extends readonly Stage<unknown>[]> = {
  -readonly [K in keyof S]: S[K] extends Stage<infer R> ? R : never;
};

/** Options of {@link runPipeline}. */
export interface PipelineOptions {
  /** Aborting it destroys every stage; the call then rejects with an AbortedError. */
  signal?: AbortSignal;
  /**
   * Run adjacent mergeable stages as one stream (default true). False runs
   * every stage as its own stream: for comparisons and benchmarks.
   */
  merge?: boolean;
}

/** What a successful {@link runPipeline} returns. */
export interface PipelineResult<S extends PipelineStages> {
  /** Each stage's result, in stage order. */
  results: StageResults<S>;
  /** Total of the first byte counter among the stages; absent when there is none. */
  bytes?: number;
  /** Wall-clock milliseconds the run took. */
  elapsedMs: number;
  /**
   * The names of the streams that ran, in order: a merged stage is named by its
   * members joined with `+`, e.g. `uuid-rewrite+receive-guard+uuid-rewrite`.
   */
  streams: string[];
}

// Errors that teardown causes in the stages next to a failure; never the root cause
// while another error is known.
const SECONDARY_CODES = new Set([
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_STREAM_UNABLE_TO_PIPE',
  'EPIPE',
]);

function isSecondary(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, name } = err as { code?: unknown; name?: unknown };
  if (typeof code === 'string' && SECONDARY_CODES.has(code)) return true;
  return name === 'AbortError' && !(err instanceof AbortedError);
}

/**
 * Runs `stages` to completion and returns their results.
 *
 * Contract:
 * - the first stage must be a source, the last a sink, the others transforms (checked by
 *   the type and again at run time: UsageError);
 * - resolves only when the sink finished and every stage's `result` resolved;
 * - on failure rejects with the root cause: the first error, in time, that is not a
 *   consequence of teardown (premature close, EPIPE, a foreign AbortError) among every
 *   stream error and every rejected `result`, also one that rejects after its stream
 *   finished; every stage's stream is destroyed and every `result` has settled (and
 *   been observed: no `unhandledRejection`) before it rejects;
 * - when `opts.signal` aborts (also before the call), every stage is destroyed and it
 *   rejects with an AbortedError whose `cause` is the signal's reason, unless a real
 *   failure came first.
 */
export async function runPipeline<const S extends PipelineStages>(
  stages: S,
  opts: PipelineOptions = {},
): Promise<PipelineResult<S>> {
  checkShape(stages);
  const { signal } = opts;
  const started = performance.now();
  const errors: unknown[] = [];
  const record = (err: unknown) => {
    if (!errors.includes(err)) errors.push(err);
  };
  // What runs: merged stages settle their members' results, which are read below.
  const running = opts.merge === false ? [...stages] : mergeAdjacent(stages);
  const settling = [...new Set([...running, ...stages])];
  for (const stage of running) stage.stream.on('error', record);
  for (const stage of settling) stage.result.catch(record);

  let aborted: AbortedError | undefined;
  const onAbort = () => {
    aborted = new AbortedError('aborted', { cause: signal?.reason });
    record(aborted);
    for (const stage of running) stage.stream.destroy(aborted);
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  try {
    if (!aborted) await pipeline(running.map((s) => s.stream));
  } catch (err) {
    record(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }

  if (errors.length > 0) {
    const first = errors.find((e) => !isSecondary(e)) ?? errors[0];
    for (const stage of running) {
      if (!stage.stream.destroyed) stage.stream.destroy(first as Error);
    }
  }
  await Promise.allSettled(settling.map((s) => s.result));
  const settled = await Promise.allSettled(stages.map((s) => s.result));
  if (errors.length > 0) {
    const root = errors.find((e) => !isSecondary(e)) ?? errors[0];
    throw aborted && root instanceof AbortedError ? aborted : root;
  }

  const results = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
  const out: PipelineResult<S> = {
    results: results as StageResults<S>,
    elapsedMs: performance.now() - started,
    streams: running.map((s) => s.name),
  };
  const counter = stages.findIndex((s) => isByteCounter(s));
  if (counter >= 0) out.bytes = results[counter] as number;
  return out;
}

function checkShape(stages: readonly Stage<unknown>[]): void {
  if (!Array.isArray(stages) || stages.length < 2) {
    throw new UsageError('a pipeline needs at least a source and a sink stage');
  }
  stages.forEach((stage, i) => {
    const want = i === 0 ? 'source' : i === stages.length - 1 ? 'sink' : 'transform';
    if (stage.kind !== want) {
      throw new UsageError(
        `pipeline stage ${i} (${stage.name}) is a ${stage.kind} stage, expected a ${want}`,
      );
    }
  });
}
