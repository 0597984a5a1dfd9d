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
