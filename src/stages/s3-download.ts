/**
 * s3-download: a source stage reading one S3 object with ranged GETs, `jobs`
 * ranges in flight, handed on strictly in order. Each range is retried on its own
 * (network errors, 5xx, throttling, a body cut short), and every range is pinned
 * to the object's ETag (If-Match), so an object replaced mid-download fails the
 * stage instead of mixing two versions.
 *
 * Buffering/backpressure: each range is collected whole, as the chunks the socket
 * delivered (handed on as they are: no concatenation, and a consumer that keeps a
 * small slice pins one socket chunk, not a whole range);
 * at most `jobs` ranges are fetched or waiting, and new ranges are requested only
 * while the consumer reads (`_read`), so memory is bounded by about
 * (jobs + 1) × rangeSize. Destroying the stream cancels the requests in flight.
 *
 * With `readMetadata`, the object is always HEADed first (pinned to the listed ETag
 * when known) and `head` resolves with its size, ETag and user metadata, before the
 * first byte is read: what a check of the whole-stream digest needs.
 */
import { Readable } from 'node:stream';
import { s3Sdk } from '../s3/aws-sdk.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { AbortedError, StoreError, UsageError, describeError, isRetryable } from '../errors.js';
import { debug } from '../log.js';
import { destroyOnAbort, handled, sourceStage } from '../streams/stage.js';
import type { SourceStage, StageOptions } from '../streams/stage.js';

/** Options of {@link s3Download}. */
export interface S3DownloadOptions extends StageOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** Object size in bytes, when known from a listing (saves a HEAD). */
  size?: number;
  /** Object ETag, when known from a listing; ranges are pinned to it. */
  etag?: string;
  /** Bytes per ranged GET. Default 8 MiB. */
  rangeSize?: number;
  /** Ranges in flight. Default 4. */
  jobs?: number;
  /**
   * Attempts per range (on top of the SDK's own retries of a request): a range
   * whose body fails or ends short mid-stream is requested again. Default 5.
   */
  attempts?: number;
  /**
   * Base retry delay in ms: retry n waits a random time in [½, 1] × base × 2^(n-1),
   * at most {@link maxRetryDelayMs}. Default 200.
   */
  retryDelayMs?: number;
  /** Longest wait before a retry, ms. Default 10 000. */
  maxRetryDelayMs?: number;
  /** HEAD the object even when size and ETag are known, to read its user metadata. Default false. */
  readMetadata?: boolean;
}

/** What the download knows of the object before reading it. */
export interface S3ObjectHead {
  size: number;
  etag: string | undefined;
  /** User metadata (keys without `x-amz-meta-`); undefined when no HEAD was made. */
  metadata: Record<string, string> | undefined;
}

/** The stage {@link s3Download} returns. */
export interface S3DownloadStage extends SourceStage<S3DownloadResult> {
  /**
   * Resolves once the object is known (after the HEAD, when one is made), before any
   * byte is read; rejects when the HEAD failed or the stream was destroyed before.
   */
  readonly head: Promise<S3ObjectHead>;
}

/** What a finished download read. */
export interface S3DownloadResult {
  bytes: number;
  /** Ranges that needed more than one attempt. */
  retriedRanges: number;
}

const MiB = 1024 * 1024;

function positive(name: string, v: number): void {
  if (!(Number.isSafeInteger(v) && v > 0)) {
    throw new UsageError(`s3Download: ${name} must be a positive integer, got ${v}`);
  }
}

/**
 * Why a ranged GET failed, for a message: what happened (a body cut short says how
 * much of it arrived) and, in parentheses, the last cause as the SDK or Node gave it.
 */
function rangeFailure(err: unknown, got: number, want: number): string {
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
  // The SDK's timeouts name the operation already: `GetObject timed out after 60 s (8 attempts)`.
  const detail = describeError(err).replace(/^GetObject (?=timed out)/, '');
  const cut = got > 0 && got < want ? `, after ${got} of ${want} bytes` : '';
  if (
    e?.code === 'ECONNRESET' ||
    e?.message === 'aborted' ||
    e?.code === 'ERR_STREAM_PREMATURE_CLOSE'
  ) {
    return `connection reset${cut} (last: ${detail})`;
  }
  if (e?.name === 'TimeoutError' || e?.code === 'ETIMEDOUT')
    return `timed out${cut} (last: ${detail})`;
  return cut ? `${detail}${cut}` : detail;
}

/**
 * Creates the source. Contract: the stream is the object's bytes, in order, and
 * ends only after the last range arrived complete; a range that still fails
 * after `attempts` errors the stream with a StoreError naming the key and range.
 * Throws UsageError for invalid options.
 */
export function s3Download(opts: S3DownloadOptions): S3DownloadStage {
  const { client, bucket, key } = opts;
  if (!client || typeof bucket !== 'string' || bucket === '' || typeof key !== 'string') {
    throw new UsageError('s3Download: client, bucket and key are required');
  }
  const rangeSize = opts.rangeSize ?? 8 * MiB;
  const jobs = opts.jobs ?? 4;
  const attempts = opts.attempts ?? 5;
  const retryDelayMs = opts.retryDelayMs ?? 200;
  const maxRetryDelayMs = opts.maxRetryDelayMs ?? 10_000;
  positive('rangeSize', rangeSize);
  positive('jobs', jobs);
  positive('attempts', attempts);
  if (opts.size !== undefined && !(Number.isSafeInteger(opts.size) && opts.size >= 0)) {
    throw new UsageError(`s3Download: size must be a non-negative integer, got ${opts.size}`);
  }
  const where = `s3://${bucket}/${key}`;
  const cancel = new AbortController();
  let size = opts.size;
  let etag = opts.etag;
  let next = 0;
  let delivered = 0;
  let retriedRanges = 0;
  const queue: Promise<Buffer[]>[] = [];
  let pumping = false;
  let settleHead!: { resolve: (h: S3ObjectHead) => void; reject: (e: unknown) => void };
  const head = handled(
    new Promise<S3ObjectHead>((resolve, reject) => (settleHead = { resolve, reject })),
  );

  /** Waits `ms`, or rejects when the download is cancelled; leaves no listener behind either way. */
  const sleep = (ms: number) =>
    new Promise<void>((resolve, reject) => {
      const signal = cancel.signal;
      if (signal.aborted) {
        reject(new AbortedError('download cancelled'));
        return;
      }
      const onAbort = () => {
        clearTimeout(t);
        reject(new AbortedError('download cancelled'));
      };
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });

  /** Delay before retry `n` (1-based): exponential, capped, with jitter. */
  const backoff = (n: number) => {
    const ceiling = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (n - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  };

  const fetchRange = async (start: number, end: number): Promise<Buffer[]> => {
    for (let attempt = 1; ; attempt++) {
      let got = 0;
      try {
        const res = await client.send(
          new (s3Sdk().GetObjectCommand)({
            Bucket: bucket,
            Key: key,
            Range: `bytes=${start}-${end - 1}`,
            ...(etag !== undefined ? { IfMatch: etag } : {}),
          }),
          { abortSignal: cancel.signal },
        );
        const chunks: Buffer[] = [];
        for await (const c of res.Body as AsyncIterable<Uint8Array>) {
          const b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.length);
          chunks.push(b);
          got += b.length;
        }
        if (got !== end - start) {
          throw Object.assign(new Error(`response body ended early`), { code: 'ECONNRESET' });
        }
        if (attempt > 1) retriedRanges += 1;
        return chunks;
      } catch (err) {
        if (cancel.signal.aborted) throw err;
        if (attempt >= attempts || !isRetryable(err)) {
          const tries = attempt > 1 ? ` after ${attempt} attempts` : '';
          throw new StoreError(
            `${where}: GetObject bytes ${start}-${end - 1} failed${tries}: ${rangeFailure(err, got, end - start)}`,
            { cause: err },
          );
        }
        debug('retrying S3 range', { key, start, attempt, error: describeError(err) });
        await sleep(backoff(attempt));
      }
    }
  };

  const fill = () => {
    while (queue.length < jobs && size !== undefined && next < size) {
      const start = next;
      const end = Math.min(size, start + rangeSize);
      next = end;
      queue.push(handled(fetchRange(start, end)));
    }
  };

  const stream: Readable = new Readable({
    highWaterMark: rangeSize,
    construct(callback) {
      if (!opts.readMetadata && size !== undefined && (etag !== undefined || size === 0)) {
        settleHead.resolve({ size, etag, metadata: undefined });
        callback();
        return;
      }
      client
        .send(
          new (s3Sdk().HeadObjectCommand)({
            Bucket: bucket,
            Key: key,
            ...(etag !== undefined ? { IfMatch: etag } : {}),
          }),
          { abortSignal: cancel.signal },
        )
        .then(
          (res) => {
            size ??= res.ContentLength ?? 0;
            etag ??= res.ETag;
            settleHead.resolve({ size, etag, metadata: res.Metadata ?? {} });
            callback();
          },
          (err: unknown) => {
            const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata
              ?.httpStatusCode;
            const why =
              status === 412
                ? `the object changed since it was listed (its ETag is no longer ${etag}); list again`
                : describeError(err);
            const e = new StoreError(`${where}: ${why}`, { cause: err });
            settleHead.reject(e);
            callback(e);
          },
        );
    },
    read() {
      if (pumping) return;
      pumping = true;
      (async () => {
        for (;;) {
          fill();
          const head = queue.shift();
          if (head === undefined) {
            stream.push(null);
            return;
          }
          const chunks = await head;
          if (stream.destroyed) return;
          fill();
          let more = true;
          for (const c of chunks) {
            delivered += c.length;
            more = stream.push(c);
          }
          // Cleared before Node may ask again: a _read during push() is served by this loop.
          if (!more) {
            pumping = false;
            return;
          }
        }
      })().then(
        () => undefined,
        (err: unknown) => {
          pumping = false;
          stream.destroy(err as Error);
        },
      );
    },
    destroy(err, callback) {
      settleHead.reject(err ?? new AbortedError(`${where}: download destroyed`));
      cancel.abort(err ?? new AbortedError('download destroyed'));
      queue.length = 0;
      callback(err);
    },
  });
  destroyOnAbort(stream, opts.signal);
  const result = new Promise<S3DownloadResult>((resolve, reject) => {
    stream.once('end', () => resolve({ bytes: delivered, retriedRanges }));
    stream.once('error', reject);
    stream.once('close', () => {
      if (!stream.readableEnded) reject(new AbortedError(`${where}: download destroyed`));
    });
  });
  return { ...sourceStage('s3-download', stream, result), head };
}
