/**
 * The stage types of the streaming framework. A stage is what a factory returns:
 * a Node stream plus, where the stage produces a value (a digest, a byte count,
 * a received subvolume), a typed `result` promise next to it.
 *
 * Contract every stage keeps:
 * - completion and failure travel on the stream itself: a source ends only after
 *   its producer (e.g. a child process) succeeded, a sink finishes only after
 *   its consumer committed; a failure errors the stream;
 * - destroying the stream (with or without an error) tears the stage down:
 *   child processes are killed and reaped, sockets closed, temporary state
 *   left in a state a rerun recognises;
 * - `result` settles once the stream has finished or been destroyed, never later
 *   and never not at all (it rejects when the stage failed or was torn down).
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { AbortedError } from '../errors.js';

/** What every stage has. */
export interface StageBase<R> {
  /** Short name for progress, logs and errors, e.g. `btrfs-send`. */
  readonly name: string;
  /** Settles after the stream finished (resolves) or failed/was destroyed (rejects). */
  readonly result: Promise<R>;
}

/** Produces bytes: btrfs send, S3 download, SSH read. */
export interface SourceStage<R = void> extends StageBase<R> {
  readonly kind: 'source';
  readonly stream: Readable;
}

/** Bytes in, bytes out: uuid-rewrite, stream-verify, taps. */
export interface TransformStage<R = void> extends StageBase<R> {
  readonly kind: 'transform';
  readonly stream: Duplex;
}

/** Consumes bytes: btrfs receive, S3 upload, SSH write, size counters. */
export interface SinkStage<R = void> extends StageBase<R> {
  readonly kind: 'sink';
  readonly stream: Writable;
}

/** Any stage. */
export type Stage<R = unknown> = SourceStage<R> | TransformStage<R> | SinkStage<R>;

/** Options every stage factory accepts. */
export interface StageOptions {
  /** Aborting it destroys the stage's stream with an AbortedError. */
  signal?: AbortSignal;
}

/**
 * Destroys `stream` with an {@link AbortedError} (its `cause` is the signal's reason) when
 * `signal` aborts; at once (synchronously) when it already has. The listener is removed
 * when the stream closes, so a long-lived signal does not keep finished streams alive.
 * `message` is the error's message (default `aborted`).
 */
export function destroyOnAbort(
  stream: Readable | Writable,
  signal: AbortSignal | undefined,
  message = 'aborted',
): void {
  if (!signal) return;
  const abort = () => {
    stream.destroy(new AbortedError(message, { cause: signal.reason }));
  };
  if (signal.aborted) {
    abort();
    return;
  }
  signal.addEventListener('abort', abort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', abort));
}

/**
 * A promise that resolves once `stream` has finished (every side it has: ended and/or
 * finished) and rejects with its error, or `ERR_STREAM_PREMATURE_CLOSE` when it was
 * destroyed before that. Marked handled: leaving it unawaited never raises
 * `unhandledRejection`; awaiting it still throws.
 */
export function streamDone(stream: Readable | Writable): Promise<void> {
  return handled(finished(stream));
}

/**
 * Marks `promise` as handled (no `unhandledRejection` if nobody awaits it) and returns
 * it unchanged: awaiting it still rejects. Every stage constructor applies it to `result`.
 */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(noop);
  return promise;
}

function noop(): void {}

/**
 * Makes a {@link SourceStage}. Without `result`, the result resolves when the stream has
 * ended and rejects when it failed or was destroyed first (see {@link streamDone}).
 */
export function sourceStage(name: string, stream: Readable): SourceStage<void>;
export function sourceStage<R>(name: string, stream: Readable, result: Promise<R>): SourceStage<R>;
export function sourceStage<R>(
  name: string,
  stream: Readable,
  result?: Promise<R>,
): SourceStage<R | void> {
  return { kind: 'source', name, stream, result: result ? handled(result) : streamDone(stream) };
}

/** Makes a {@link TransformStage}; `result` defaults as in {@link sourceStage}. */
export function transformStage(name: string, stream: Duplex): TransformStage<void>;
export function transformStage<R>(
  name: string,
  stream: Duplex,
  result: Promise<R>,
): TransformStage<R>;
export function transformStage<R>(
  name: string,
  stream: Duplex,
  result?: Promise<R>,
): TransformStage<R | void> {
  return { kind: 'transform', name, stream, result: result ? handled(result) : streamDone(stream) };
}

/** Makes a {@link SinkStage}; `result` defaults as in {@link sourceStage} (finished writing). */
export function sinkStage(name: string, stream: Writable): SinkStage<void>;
export function sinkStage<R>(name: string, stream: Writable, result: Promise<R>): SinkStage<R>;
export function sinkStage<R>(
  name: string,
  stream: Writable,
  result?: Promise<R>,
): SinkStage<R | void> {
  return { kind: 'sink', name, stream, result: result ? handled(result) : streamDone(stream) };
}
