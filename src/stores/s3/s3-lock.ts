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
  const { client, bucket, key, label } = opts;
  const ttlMs = opts.ttlMs ?? 60 * MINUTE;
  const refreshMs = Math.min(opts.refreshMs ?? 5 * MINUTE, ttlMs / 3);
  const uri = `s3://${bucket}/${key}`;
  const signal = opts.signal;
  const sse = (opts.encrypt ?? true) ? { ServerSideEncryption: 'AES256' as const } : {};
  let conditional = true;

  const wrap = (what: string, err: unknown): never => {
    if (err instanceof StoreError) throw err;
    if (errorName(err) === 'NoSuchBucket') {
      throw new StoreError(`s3://${bucket}/: no such bucket`, { cause: err });
    }
    throw new StoreError(`${label}: ${what} ${uri}: ${describeError(err)}`, { cause: err });
  };

  const put = async (
    holder: LockHolder,
    cond: { IfNoneMatch?: string; IfMatch?: string },
    abortSignal?: AbortSignal,
  ): Promise<string | undefined> => {
    const send = () =>
      client.send(
        new (s3Sdk().PutObjectCommand)({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(holder) + '\n',
          ContentType: 'application/json',
          ...sse,
          ...(conditional ? cond : {}),
        }),
        abortSignal ? { abortSignal } : {},
      );
    try {
      return (await send()).ETag;
    } catch (err) {
      if (!(conditional && isUnsupported(err))) throw err;
      debug('S3 conditional writes not supported: locking by put and read-back', { uri });
      conditional = false;
      return (await send()).ETag;
    }
  };

  const get = async (abortSignal?: AbortSignal): Promise<Current | undefined> => {
    try {
      const res = await client.send(
        new (s3Sdk().GetObjectCommand)({ Bucket: bucket, Key: key }),
        abortSignal ? { abortSignal } : {},
      );
      return { text: (await res.Body?.transformToString('utf8')) ?? '', etag: res.ETag };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  };

  const expiresAt = (h: LockHolder) => {
    const t = Date.parse(h.expires ?? '');
    return Number.isNaN(t) ? Date.parse(h.started) + ttlMs : t;
  };
  const isStale = (h: LockHolder) => !(expiresAt(h) > Date.now()) || holderState(h) === 'dead';

  /** Reads the lock back: true when it is ours (and then its ETag). */
  const verify = async (holder: LockHolder): Promise<Current | undefined> => {
    if (!conditional) await new Promise((r) => setTimeout(r, opts.settleMs ?? 1000));
    const now = await get(signal);
    return now && parseHolder(now.text)?.token === holder.token ? now : undefined;
  };

  let holder: LockHolder | undefined;
  let etag: string | undefined;
  try {
    for (let attempt = 0; holder === undefined; attempt++) {
      signal?.throwIfAborted();
      if (attempt >= 10) {
        throw new StoreError(`${label}: could not take the lock ${uri}: it keeps changing`);
      }
      const mine = newHolder({
        ...(opts.command !== undefined ? { command: opts.command } : {}),
        expires: new Date(Date.now() + ttlMs),
      });
      // Read first: even where conditional puts are ignored, a live lock is never overwritten.
      const existing = await get(signal);
      try {
        if (!existing) {
          await put(mine, { IfNoneMatch: '*' }, signal);
        } else {
          const other = parseHolder(existing.text);
          if (!other) throw lockedError(label, undefined, uri);
          if (!isStale(other)) throw lockedError(label, other, uri);
          await put(mine, existing.etag !== undefined ? { IfMatch: existing.etag } : {}, signal);
          warn(
            'STALE_LOCK',
            `${label}: taking over the lock of a run that ${expiresAt(other) > Date.now() ? 'is gone' : 'expired'} (${describeHolder(other)})`,
            { lock: uri, pid: other.pid, host: other.host },
          );
        }
      } catch (err) {
        // Another run created, took over or removed it between our read and our put: look again.
        if (isPreconditionFailed(err) || isMissing(err)) continue;
        if (isConflict(err)) {
          await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
          continue;
        }
        throw err;
      }
      const back = await verify(mine);
      if (!back) continue; // another run's put landed after ours: look again
      holder = mine;
      etag = back.etag;
    }
  } catch (err) {
    wrap('taking the lock', err);
  }
  if (!holder) throw new StoreError(`${label}: could not take the lock ${uri}`);
  debug('lock taken', { lock: uri, expires: holder.expires });

  const lost = new AbortController();
  let current: LockHolder = holder;
  let refreshing: Promise<void> | undefined;
  let released = false;

  const lose = (why: string) => {
    clearInterval(timer);
    if (!lost.signal.aborted)
      lost.abort(new LockLostError(`${label}: lost the lock ${uri}: ${why}`));
  };

  const refresh = async () => {
    const next: LockHolder = { ...current, expires: new Date(Date.now() + ttlMs).toISOString() };
    try {
      if (!conditional) {
        const now = await get();
        if (parseHolder(now?.text ?? '')?.token !== current.token) {
          lose('another run took it over, or it was removed');
          return;
        }
      }
      etag = (await put(next, etag !== undefined ? { IfMatch: etag } : {})) ?? etag;
      current = next;
      debug('lock refreshed', { lock: uri, expires: next.expires });
    } catch (err) {
      if (isPreconditionFailed(err) || isMissing(err)) {
        lose('another run took it over, or it was removed');
      } else if (expiresAt(current) - Date.now() < refreshMs) {
        lose(`cannot refresh it before it expires: ${describeError(err)}`);
      } else {
        debug('lock refresh failed; trying again later', { lock: uri, error: describeError(err) });
      }
    }
  };

  const timer = setInterval(() => {
    if (released || refreshing) return;
    refreshing = refresh().finally(() => (refreshing = undefined));
  }, refreshMs);
  timer.unref();

  return {
    where: uri,
    holder,
    signal: lost.signal,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await refreshing;
      if (lost.signal.aborted) return;
      // A release runs after an abort too (Ctrl-C): it must not use the run's signal.
      const abortSignal = AbortSignal.timeout(30_000);
      try {
        if (conditional && etag !== undefined) {
          try {
            await client.send(
              new (s3Sdk().DeleteObjectCommand)({ Bucket: bucket, Key: key, IfMatch: etag }),
              { abortSignal },
            );
            debug('lock released', { lock: uri });
            return;
          } catch (err) {
            if (isPreconditionFailed(err) || isMissing(err)) {
              debug('lock was taken over or removed; left alone', { lock: uri });
              return;
            }
            if (!isUnsupported(err) && errorName(err) !== 'InvalidArgument') throw err;
          }
        }
        const now = await get(abortSignal);
        if (parseHolder(now?.text ?? '')?.token !== current.token) return;
        await client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: bucket, Key: key }), {
          abortSignal,
        });
        debug('lock released', { lock: uri });
      } catch (err) {
        warn(
          'LOCK_RELEASE',
          `${label}: cannot remove the lock ${uri} (${describeError(err)}); it lapses at ${formatLockTime(current.expires ?? '')}`,
        );
      }
    },
  };
}
