/**
 * The lock of an S3 store: one object, `<prefix>/.buttersink-lock`, holding
 * the holder's JSON ({@link LockHolder}: pid, host, started, expires,
 * command). A run keeps it while it writes the prefix, so a second run fails
 * at once instead of resuming the first one's live multipart upload.
 *
 * - Taking it: PutObject with `If-None-Match: *`, which S3 (since 2024),
 *   MinIO, Ceph RGW, R2 and moto_server honour atomically: of two runs, one
 *   gets 412 Precondition Failed and reads who holds the lock.
 * - Expiry: `expires` is one hour (`ttlMs`) ahead; the holder rewrites the
 *   object every five minutes (`refreshMs`) with `If-Match: <its ETag>`. A
 *   lock past `expires` (judged by the local clock: keep clocks in NTP sync),
 *   or whose holder is certainly dead (same host, pid gone, see `lock.ts`), is
 *   stale and taken over with `If-Match: <the stale lock's ETag>`, so of two
 *   runs taking it over only one wins. A refresh that fails with 412 (taken
 *   over) or cannot get through before the lock expires aborts the holder's
 *   `signal` with a {@link LockLostError}.
 * - After every successful put the object is read back and its token
 *   compared: with a service that ignores the conditional headers, a put
 *   answered `501 NotImplemented` is retried unconditionally, and then two
 *   runs starting within the same second or so may both believe they hold it
 *   (the race window is between one's read-back and the other's put).
 * - Released with DeleteObject `If-Match: <its ETag>` (a lock taken over
 *   meanwhile is left alone); without conditional delete, read-compare-delete.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { StoreError, describeError } from '../../errors.js';
import { debug, warn } from '../../log.js';
import { s3Sdk } from '../../s3/aws-sdk.js';
import {
  LockLostError,
  describeHolder,
  formatLockTime,
  holderState,
  lockedError,
  newHolder,
  parseHolder,
} from '../lock.js';
import type { LockHolder, LockOptions, StoreLock } from '../lock.js';

const MINUTE = 60_000;

/** Options of {@link acquireS3Lock}. */
export interface S3LockOptions extends LockOptions {
  client: S3Client;
  bucket: string;
  /** Key of the lock object (`lockKey(prefix)`). */
  key: string;
  /** The store as the user wrote it, for messages (`s3://bucket/prefix/`). */
  label: string;
  /** Server-side encryption (AES256) of the lock object. Default true. */
  encrypt?: boolean;
  /** How long the lock lasts without a refresh, ms. Default 1 hour. */
  ttlMs?: number;
  /** How often the holder refreshes it, ms. Default 5 minutes (at most ttlMs / 3). */
  refreshMs?: number;
  /** How long to wait before re-reading a lock put without a conditional header, ms. Default 1000. */
  settleMs?: number;
}

interface Current {
  readonly text: string;
  readonly etag: string | undefined;
}

function errorName(err: unknown): string | undefined {
  const name = (err as { name?: unknown; Code?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** 412: the object is there (If-None-Match) or is not the one we meant (If-Match). */
function isPreconditionFailed(err: unknown): boolean {
  return errorName(err) === 'PreconditionFailed' || httpStatus(err) === 412;
}

/** 409: another conditional write to the key is in flight (S3 asks to retry). */
function isConflict(err: unknown): boolean {
  return errorName(err) === 'ConditionalRequestConflict' || httpStatus(err) === 409;
}

/** 404 for the key (not for the bucket). */
function isMissing(err: unknown): boolean {
  const name = errorName(err);
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(err) === 404;
}

/** The service does not do conditional writes. */
function isUnsupported(err: unknown): boolean {
  return errorName(err) === 'NotImplemented' || httpStatus(err) === 501;
}

/**
 * Takes the lock object (see the module header): resolves with the held lock,
 * refreshed until released, or rejects with a LockedError naming the holder
 * when another run holds a lock that has not expired.
 */
export async function acquireS3Lock(opts: S3LockOptions): Promise<StoreLock> {
  const object = new LockObject(opts);
  let taken: Current & { holder: LockHolder };
  try {
    taken = await takeLock(object, opts);
  } catch (err) {
    return object.wrap('taking the lock', err);
  }
  debug('lock taken', { lock: object.uri, expires: taken.holder.expires });
  const held = new HeldLock(object, taken.holder, taken.etag, opts.refreshMs ?? 5 * MINUTE);
  return {
    where: object.uri,
    holder: taken.holder,
    signal: held.signal,
    release: () => held.release(),
  };
}

/**
 * Takes the lock: reads it, puts ours if there is none or it is stale, and reads
 * it back, looking again (at most ten times) when another run got in between.
 */
async function takeLock(
  object: LockObject,
  opts: S3LockOptions,
): Promise<Current & { holder: LockHolder }> {
  const { label, signal } = opts;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    if (attempt >= 10) {
      throw new StoreError(`${label}: could not take the lock ${object.uri}: it keeps changing`);
    }
    const mine = newHolder({
      ...(opts.command !== undefined ? { command: opts.command } : {}),
      expires: new Date(Date.now() + object.ttlMs),
    });
    try {
      await putUnlessHeld(object, mine, signal);
    } catch (err) {
      // Another run created, took over or removed it between our read and our put: look again.
      if (isPreconditionFailed(err) || isMissing(err)) continue;
      if (isConflict(err)) {
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
        continue;
      }
      throw err;
    }
    const back = await object.verify(mine, signal);
    if (back) return { ...back, holder: mine }; // else another run's put landed after ours
  }
}

/**
 * Puts `mine` where there is no lock (If-None-Match) or over a stale one (If-Match
 * its ETag, with a STALE_LOCK warning); throws a LockedError for a live or unreadable one.
 */
async function putUnlessHeld(
  object: LockObject,
  mine: LockHolder,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { label } = object;
  // Read first: even where conditional puts are ignored, a live lock is never overwritten.
  const existing = await object.get(signal);
  if (!existing) {
    await object.put(mine, { IfNoneMatch: '*' }, signal);
    return;
  }
  const other = parseHolder(existing.text);
  if (!other) throw lockedError(label, undefined, object.uri);
  if (!object.isStale(other)) throw lockedError(label, other, object.uri);
  await object.put(mine, existing.etag !== undefined ? { IfMatch: existing.etag } : {}, signal);
  warn(
    'STALE_LOCK',
    `${label}: taking over the lock of a run that ${object.expiresAt(other) > Date.now() ? 'is gone' : 'expired'} (${describeHolder(other)})`,
    { lock: object.uri, pid: other.pid, host: other.host },
  );
}

/** The lock object's reads and writes, and whether the service does conditional writes. */
class LockObject {
  readonly uri: string;
  readonly label: string;
  readonly ttlMs: number;
  /** False once the service answered a conditional put with 501: locking by put and read-back. */
  conditional = true;

  constructor(private readonly opts: S3LockOptions) {
    this.uri = `s3://${opts.bucket}/${opts.key}`;
    this.label = opts.label;
    this.ttlMs = opts.ttlMs ?? 60 * MINUTE;
  }

  /** Throws `err` as a one-line StoreError about `what` (a StoreError as it is). */
  wrap(what: string, err: unknown): never {
    if (err instanceof StoreError) throw err;
    if (errorName(err) === 'NoSuchBucket') {
      throw new StoreError(`s3://${this.opts.bucket}/: no such bucket`, { cause: err });
    }
    throw new StoreError(`${this.label}: ${what} ${this.uri}: ${describeError(err)}`, {
      cause: err,
    });
  }

  /** Writes `holder` with the conditional headers (unless unsupported); returns the ETag. */
  async put(
    holder: LockHolder,
    cond: { IfNoneMatch?: string; IfMatch?: string },
    abortSignal?: AbortSignal,
  ): Promise<string | undefined> {
    const { client, bucket, key } = this.opts;
    const sse = (this.opts.encrypt ?? true) ? { ServerSideEncryption: 'AES256' as const } : {};
    const send = () =>
      client.send(
        new (s3Sdk().PutObjectCommand)({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(holder) + '\n',
          ContentType: 'application/json',
          ...sse,
          ...(this.conditional ? cond : {}),
        }),
        abortSignal ? { abortSignal } : {},
      );
    try {
      return (await send()).ETag;
    } catch (err) {
      if (!(this.conditional && isUnsupported(err))) throw err;
      debug('S3 conditional writes not supported: locking by put and read-back', {
        uri: this.uri,
      });
      this.conditional = false;
      return (await send()).ETag;
    }
  }

  /** Reads the lock object; undefined when there is none. */
  async get(abortSignal?: AbortSignal): Promise<Current | undefined> {
    try {
      const res = await this.opts.client.send(
        new (s3Sdk().GetObjectCommand)({ Bucket: this.opts.bucket, Key: this.opts.key }),
        abortSignal ? { abortSignal } : {},
      );
      return { text: (await res.Body?.transformToString('utf8')) ?? '', etag: res.ETag };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** True when the object is still `token`'s lock. */
  async holds(token: string | undefined, abortSignal?: AbortSignal): Promise<boolean> {
    const now = await this.get(abortSignal);
    return parseHolder(now?.text ?? '')?.token === token;
  }

  /** Deletes the lock object, only if its ETag is still `ifMatch` when given. */
  async delete(ifMatch: string | undefined, abortSignal: AbortSignal): Promise<void> {
    await this.opts.client.send(
      new (s3Sdk().DeleteObjectCommand)({
        Bucket: this.opts.bucket,
        Key: this.opts.key,
        ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}),
      }),
      { abortSignal },
    );
  }

  /** When `h` lapses, ms since the epoch (started + ttl for a holder without `expires`). */
  expiresAt(h: LockHolder): number {
    const t = Date.parse(h.expires ?? '');
    return Number.isNaN(t) ? Date.parse(h.started) + this.ttlMs : t;
  }

  /** True for a lock past its expiry or whose holder is certainly dead. */
  isStale(h: LockHolder): boolean {
    return !(this.expiresAt(h) > Date.now()) || holderState(h) === 'dead';
  }

  /** Reads the lock back: the object (and its ETag) when it is `holder`'s. */
  async verify(holder: LockHolder, signal: AbortSignal | undefined): Promise<Current | undefined> {
    if (!this.conditional) await new Promise((r) => setTimeout(r, this.opts.settleMs ?? 1000));
    const now = await this.get(signal);
    return now && parseHolder(now.text)?.token === holder.token ? now : undefined;
  }
}

/** A taken lock: refreshed every `refreshMs` until released or lost. */
class HeldLock {
  private readonly lost = new AbortController();
  private readonly refreshMs: number;
  private readonly timer: NodeJS.Timeout;
  private refreshing: Promise<void> | undefined;
  private released = false;

  constructor(
    private readonly object: LockObject,
    private current: LockHolder,
    private etag: string | undefined,
    refreshMs: number,
  ) {
    this.refreshMs = Math.min(refreshMs, object.ttlMs / 3);
    this.timer = setInterval(() => {
      if (this.released || this.refreshing) return;
      this.refreshing = this.refresh().finally(() => (this.refreshing = undefined));
    }, this.refreshMs);
    this.timer.unref();
  }

  /** Aborted with a LockLostError when the lock is lost. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  private lose(why: string): void {
    clearInterval(this.timer);
    if (!this.lost.signal.aborted) {
      this.lost.abort(
        new LockLostError(`${this.object.label}: lost the lock ${this.object.uri}: ${why}`),
      );
    }
  }

  /** Rewrites the lock with a later expiry; loses it when taken over or about to lapse. */
  private async refresh(): Promise<void> {
    const { object, current } = this;
    const next: LockHolder = {
      ...current,
      expires: new Date(Date.now() + object.ttlMs).toISOString(),
    };
    try {
      if (!object.conditional && !(await object.holds(current.token))) {
        this.lose('another run took it over, or it was removed');
        return;
      }
      const cond = this.etag !== undefined ? { IfMatch: this.etag } : {};
      this.etag = (await object.put(next, cond)) ?? this.etag;
      this.current = next;
      debug('lock refreshed', { lock: object.uri, expires: next.expires });
    } catch (err) {
      if (isPreconditionFailed(err) || isMissing(err)) {
        this.lose('another run took it over, or it was removed');
      } else if (object.expiresAt(current) - Date.now() < this.refreshMs) {
        this.lose(`cannot refresh it before it expires: ${describeError(err)}`);
      } else {
        debug('lock refresh failed; trying again later', {
          lock: object.uri,
          error: describeError(err),
        });
      }
    }
  }

  /** Gives the lock back if it is still ours; idempotent, warns instead of throwing. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.refreshing;
    if (this.lost.signal.aborted) return;
    const { object } = this;
    // A release runs after an abort too (Ctrl-C): it must not use the run's signal.
    const abortSignal = AbortSignal.timeout(30_000);
    try {
      if (object.conditional && this.etag !== undefined) {
        if (await this.deleteIfUnchanged(this.etag, abortSignal)) return;
      }
      if (!(await object.holds(this.current.token, abortSignal))) return;
      await object.delete(undefined, abortSignal);
      debug('lock released', { lock: object.uri });
    } catch (err) {
      warn(
        'LOCK_RELEASE',
        `${this.object.label}: cannot remove the lock ${object.uri} (${describeError(err)}); it lapses at ${formatLockTime(this.current.expires ?? '')}`,
      );
    }
  }

  /**
   * Conditional delete: true when done (or the lock was taken over or removed, and
   * is left alone); false when the service does not do it (read-compare-delete then).
   */
  private async deleteIfUnchanged(etag: string, abortSignal: AbortSignal): Promise<boolean> {
    try {
      await this.object.delete(etag, abortSignal);
      debug('lock released', { lock: this.object.uri });
      return true;
    } catch (err) {
      if (isPreconditionFailed(err) || isMissing(err)) {
        debug('lock was taken over or removed; left alone', { lock: this.object.uri });
        return true;
      }
      if (!isUnsupported(err) && errorName(err) !== 'InvalidArgument') throw err;
      return false;
    }
  }
}
