/**
 * Retry as a store wrapper: {@link RetryStore} retries, with exponential
 * backoff, only the operations that change nothing and can simply run again:
 * `view`, `measure` (an S3 HEAD, a remote size probe), `listPartials`,
 * `streamSupport` and `preflight`. Everything else runs once: `receive`, `copyFrom` and the
 * deletes change the store, and `send` is a stream.
 *
 * An error is retried when its cause chain holds a transient failure
 * ({@link isRetryable}: network resets, S3 5xx and throttling); a store's
 * own refusals (usage, corruption, a missing diff) never are. Each retry is a
 * warning (`RETRY`) naming the operation, the failure and the wait.
 *
 * Not here: S3 downloads stay retried inside the s3-download stage, because
 * they resume mid-stream: each ranged GET is retried on its own while the
 * bytes already handed on stay handed on, which a wrapper around `send` (a
 * stream that has started) cannot do. S3 requests are also retried by the
 * SDK itself (`maxAttempts`).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { causes, describeError, isRetryable } from '../../errors.js';
import { warn } from '../../log.js';
import type { DiffOffer, StoreView } from '../../planner/plan-input.js';
import type { Volume } from '../../planner/volume.js';
import type { SourceStage } from '../../streams/stage.js';
import type * as S from '../store.js';

/** Options of {@link RetryStore}. */
export interface RetryOptions {
  /** Attempts in all, the first one included. Default 4. */
  attempts?: number;
  /** Wait before the first retry, in ms; doubled for each further one. Default 500. */
  baseDelayMs?: number;
  /** Longest wait, in ms. Default 10 000. */
  maxDelayMs?: number;
  /** Which failures are retried. Default: a transient failure in the cause chain. */
  retryable?: (err: unknown) => boolean;
  /** Waits `ms` (rejecting when `signal` aborts). Default: a timer; tests pass a fake clock. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** A number in [0, 1) for jitter (each wait is between half and all of its step). Default Math.random. */
  random?: () => number;
}

/** True when `err`'s cause chain holds a transient failure (see {@link isRetryable}). */
export function transientFailure(err: unknown): boolean {
  return causes(err).some(isRetryable);
}

/** Wraps `inner`, retrying its idempotent operations; see the module header. */
export class RetryStore implements S.Store {
  readonly kind: S.Store['kind'];
  readonly location: S.Store['location'];
  /** The wrapped store. */
  readonly inner: S.Store;
  readonly copyFrom?: S.Store['copyFrom'];
  readonly describeDiff?: S.Store['describeDiff'];
  readonly preflight?: S.Store['preflight'];
  readonly lock?: S.Store['lock'];
  readonly streamSupport?: S.Store['streamSupport'];
  readonly #opts: Required<RetryOptions>;

  constructor(inner: S.Store, opts: RetryOptions = {}) {
    this.inner = inner;
    this.kind = inner.kind;
    this.location = inner.location;
    this.#opts = {
      attempts: opts.attempts ?? 4,
      baseDelayMs: opts.baseDelayMs ?? 500,
      maxDelayMs: opts.maxDelayMs ?? 10_000,
      retryable: opts.retryable ?? transientFailure,
      sleep: opts.sleep ?? ((ms, signal) => delay(ms, undefined, signal ? { signal } : {})),
      random: opts.random ?? Math.random,
    };
    // The optional members exist exactly when the wrapped store has them.
    if (inner.copyFrom) this.copyFrom = (...a) => inner.copyFrom!(...a);
    if (inner.describeDiff) this.describeDiff = (...a) => inner.describeDiff!(...a);
    if (inner.lock) this.lock = (...a) => inner.lock!(...a);
    const streamSupport = inner.streamSupport;
    if (streamSupport) {
      this.streamSupport = (o) =>
        this.#retry('asking what it can receive', o, () => streamSupport.call(inner, o));
    }
    const preflight = inner.preflight;
    if (preflight) {
      this.preflight = (t, o) => this.#retry('preflight', o, () => preflight.call(inner, t, o));
    }
  }

  view(role: S.StoreRole, opts?: S.StoreOpOptions): Promise<StoreView> {
    return this.#retry(`listing (${role})`, opts, () => this.inner.view(role, opts));
  }

  measure(to: Volume, from: Volume | null, opts?: S.MeasureOptions): Promise<number> {
    return this.#retry(`measuring ${to.path}`, opts, () => this.inner.measure(to, from, opts));
  }

  listPartials(opts?: S.StoreOpOptions): Promise<S.Partial[]> {
    return this.#retry('listing partials', opts, () => this.inner.listPartials(opts));
  }

  send(to: Volume, from: Volume | null, opts?: S.StoreOpOptions): SourceStage<unknown> {
    return this.inner.send(to, from, opts);
  }

  receive(to: Volume, from: Volume | null, opts?: S.ReceiveOptions): Promise<S.ReceiveStages> {
    return this.inner.receive(to, from, opts);
  }

  deleteVolume(volume: Volume, opts?: S.StoreOpOptions): Promise<void> {
    return this.inner.deleteVolume(volume, opts);
  }

  deleteDiff(diff: DiffOffer, opts?: S.StoreOpOptions): Promise<void> {
    return this.inner.deleteDiff(diff, opts);
  }

  deletePartials(partials: readonly S.Partial[], opts?: S.StoreOpOptions): Promise<void> {
    return this.inner.deletePartials(partials, opts);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Runs `op`, again after a backoff while it fails transiently and attempts remain. */
  async #retry<T>(
    what: string,
    opts: S.StoreOpOptions | undefined,
    op: () => Promise<T>,
  ): Promise<T> {
    const { attempts, baseDelayMs, maxDelayMs, retryable, sleep, random } = this.#opts;
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (attempt >= attempts || opts?.signal?.aborted || !retryable(err)) throw err;
        const step = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
        const wait = Math.round(step / 2 + (random() * step) / 2);
        warn(
          'RETRY',
          `${this.location.uri}: ${what} failed (${describeError(err)}); retrying in ${(wait / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${attempts})`,
        );
        await sleep(wait, opts?.signal);
      }
    }
  }
}
