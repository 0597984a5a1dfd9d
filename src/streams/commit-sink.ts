/**
 * Commit last: wraps a sink so that its result becomes visible (renamed to its
 * final name, an upload completed, …) only after every byte was written, the
 * inner sink finished successfully and the whole upstream ended cleanly.
 *
 * Buffering/backpressure: none of its own; each write is handed to the inner
 * sink and its callback waits for the inner sink's `drain`. Teardown:
 * destroying the wrapper destroys the inner sink and skips the commit; the
 * wrapper's `close` follows the inner sink's.
 */
import { Writable } from 'node:stream';
import { AbortedError } from '../errors.js';
import { destroyOnAbort, handled, sinkStage } from './stage.js';
import type { SinkStage, StageOptions } from './stage.js';

/** Options of {@link commitSink}. */
export interface CommitSinkOptions<R, C> extends StageOptions {
  /** Stage name; default: the inner sink's name. */
  name?: string;
  /**
   * Runs once the inner sink finished and its result resolved, before the wrapper
   * finishes. Its value is the wrapper's result; a throw fails the stage.
   */
  commit: (inner: R) => Promise<C>;
}

/**
 * Returns a sink that forwards to `inner` and runs `commit` only after `inner`
 * finished successfully (its stream finished and its `result` resolved), i.e.
 * after upstream ended without error. Contract: `commit` never runs for a
 * stream that failed, was destroyed or aborted.
 */
export function commitSink<R, C>(inner: SinkStage<R>, opts: CommitSinkOptions<R, C>): SinkStage<C> {
  const target = inner.stream;
  let settle!: { resolve: (c: C) => void; reject: (e: unknown) => void };
  const result = new Promise<C>((resolve, reject) => (settle = { resolve, reject }));
  const outer = new Writable({
    highWaterMark: target.writableHighWaterMark,
    write(chunk: Buffer, _enc, cb) {
      if (target.write(chunk)) return cb();
      const onDrain = () => {
        target.off('close', onClose);
        cb();
      };
      const onClose = () => {
        target.off('drain', onDrain);
        cb(target.errored ?? new Error('receiver closed before the stream ended'));
      };
      target.once('drain', onDrain);
      target.once('close', onClose);
    },
    final(cb) {
      target.end();
      inner.result.then(
        async (r) => {
          try {
            // The project's error (cause: the signal's reason), as destroyOnAbort gives.
            if (opts.signal?.aborted) {
              throw new AbortedError('aborted before commit', { cause: opts.signal.reason });
            }
            const c = await opts.commit(r);
            settle.resolve(c);
            cb();
          } catch (err) {
            settle.reject(err);
            cb(err as Error);
          }
        },
        (err: unknown) => {
          settle.reject(err);
          cb(err as Error);
        },
      );
    },
    destroy(err, cb) {
      if (!target.destroyed) target.destroy(err ?? undefined);
      inner.result.then(
        () => settle.reject(err ?? new AbortedError('destroyed before commit')),
        (innerErr: unknown) => settle.reject(err ?? innerErr),
      );
      // Report closure only once the inner sink (and any child it owns) is gone.
      if (target.closed) cb(err);
      else target.once('close', () => cb(err));
    },
  });
  target.on('error', (err) => outer.destroy(err));
  destroyOnAbort(outer, opts.signal);
  return sinkStage(opts.name ?? inner.name, outer, handled(result));
}
