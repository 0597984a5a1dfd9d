/**
 * The one place highland is used: object-level flows (volumes, files, transfers) with a
 * parallelism limit. Never bytes (highland's destroy does not reach its source, and it
 * knows no AbortSignal: both are handled here).
 *
 * Buffering/backpressure: items are pulled from the input one at a time, only while
 * fewer than `limit` calls are running; `mapLimit` keeps every result (in input order)
 * until it resolves, `forEachLimit` keeps none.
 */
// highland is CommonJS (`export =` in its d.ts): under `module: nodenext` the default
// import is its `module.exports`, as Node gives it to an ES module.
import highland from 'highland';
import { AbortedError, UsageError } from '../errors.js';

/** Options of {@link mapLimit} and {@link forEachLimit}. */
export interface LimitOptions {
  /** Aborting it stops pulling items and aborts the signal every running call got. */
  signal?: AbortSignal;
}

/** A task: gets the item and a signal that aborts on the first failure or on abort. */
export type LimitTask<T, R> = (item: T, signal: AbortSignal) => Promise<R>;

type Outcome<R> = { ok: true; value: R } | { ok: false };

/**
 * Calls `fn` on every item with at most `limit` calls running at once, and resolves with
 * the results in input order.
 *
 * Contract: stops pulling items at the first failure (of `fn` or of the input iterator)
 * or abort, aborts the signal passed to the running calls, and settles only after every
 * started call settled; then rejects with that first failure, or with an AbortedError
 * (cause: the signal's reason) when the abort came first. An async input is read by one
 * reader at a time; its `return()` is called when stopping early.
 */
export async function mapLimit<T, R>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: LimitTask<T, R>,
  opts: LimitOptions = {},
): Promise<R[]> {
  return run(items, limit, fn, opts, true);
}

/** As {@link mapLimit}, without keeping results. */
export async function forEachLimit<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: LimitTask<T, unknown>,
  opts: LimitOptions = {},
): Promise<void> {
  await run(items, limit, fn, opts, false);
}

async function run<T, R>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: LimitTask<T, R>,
  opts: LimitOptions,
  keep: boolean,
): Promise<R[]> {
  if (!(Number.isSafeInteger(limit) && limit > 0)) {
    throw new UsageError(`parallelism limit must be a positive integer, got ${limit}`);
  }
  if (typeof fn !== 'function') throw new UsageError('mapLimit: fn must be a function');
  const { signal } = opts;
  const inner = new AbortController();
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    if (failure) return;
    failure = { error };
    inner.abort(error);
  };
  const onAbort = () => fail(new AbortedError('aborted', { cause: signal?.reason }));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  const iterator = toAsyncIterator(items);
  let done = false;
  const finish = async () => {
    if (!done) {
      done = true;
      await iterator.return?.();
    }
  };

  // Pulls the next item, or ends the stream once done or failed.
  const source = highland<T>((push, next) => {
    if (failure || done) {
      finish()
        .catch(fail)
        .finally(() => push(null, highland.nil));
      return;
    }
    iterator.next().then(
      (r) => {
        if (r.done) {
          done = true;
          push(null, highland.nil);
          return;
        }
        push(null, r.value);
        next();
      },
      (err: unknown) => {
        done = true;
        fail(err);
        push(null, highland.nil);
      },
    );
  });

  const call = (item: T): Highland.Stream<Outcome<R>> =>
    highland(
      (async (): Promise<Outcome<R>> => {
        if (failure) return { ok: false };
        try {
          const value = await fn(item, inner.signal);
          return keep ? { ok: true, value } : { ok: true, value: undefined as R };
        } catch (err) {
          fail(err);
          return { ok: false };
        }
      })(),
    );

  try {
    const outcomes = await source.map(call).parallel(limit).collect().toPromise(Promise);
    await finish().catch(fail);
    if (failure) throw failure.error;
    return keep ? outcomes.map((o) => (o as { value: R }).value) : [];
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function toAsyncIterator<T>(items: Iterable<T> | AsyncIterable<T>): AsyncIterator<T> {
  if (items && typeof (items as AsyncIterable<T>)[Symbol.asyncIterator] === 'function') {
    return (items as AsyncIterable<T>)[Symbol.asyncIterator]();
  }
  if (items && typeof (items as Iterable<T>)[Symbol.iterator] === 'function') {
    const it = (items as Iterable<T>)[Symbol.iterator]();
    return {
      next: async () => it.next(),
      return: async () => it.return?.() ?? { done: true, value: undefined },
    };
  }
  throw new UsageError('mapLimit: items must be iterable');
}
