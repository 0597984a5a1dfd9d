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
import { requireS3Object } from '../s3/s3-client.js';
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
  const session = new DownloadSession(opts, validateOptions(opts));
  const stream: Readable = new Readable({
    highWaterMark: session.settings.rangeSize,
    construct(callback) {
      session.construct(callback);
    },
    read() {
      session.read();
    },
    destroy(err, callback) {
      session.destroy(err, callback);
    },
  });
  session.stream = stream;
  destroyOnAbort(stream, opts.signal);
  const where = session.where;
  const result = new Promise<S3DownloadResult>((resolve, reject) => {
    stream.once('end', () =>
      resolve({ bytes: session.delivered, retriedRanges: session.retriedRanges }),
    );
    stream.once('error', reject);
    stream.once('close', () => {
      if (!stream.readableEnded) reject(new AbortedError(`${where}: download destroyed`));
    });
  });
  return { ...sourceStage('s3-download', stream, result), head: session.head };
}

/** The options {@link s3Download} checks and fills in with defaults. */
interface DownloadSettings {
  rangeSize: number;
  jobs: number;
  attempts: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
}

/** Checks the options (UsageError for invalid ones) and applies the defaults. */
function validateOptions(opts: S3DownloadOptions): DownloadSettings {
  requireS3Object('s3Download', opts);
  const settings = {
    rangeSize: opts.rangeSize ?? 8 * MiB,
    jobs: opts.jobs ?? 4,
    attempts: opts.attempts ?? 5,
    retryDelayMs: opts.retryDelayMs ?? 200,
    maxRetryDelayMs: opts.maxRetryDelayMs ?? 10_000,
  };
  positive('rangeSize', settings.rangeSize);
  positive('jobs', settings.jobs);
  positive('attempts', settings.attempts);
  if (opts.size !== undefined && !(Number.isSafeInteger(opts.size) && opts.size >= 0)) {
    throw new UsageError(`s3Download: size must be a non-negative integer, got ${opts.size}`);
  }
  return settings;
}

/** Waits `ms`, or rejects when `signal` aborts; leaves no listener behind either way. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
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
}

/** Delay before retry `n` (1-based): exponential, capped, with jitter. */
function backoff(settings: DownloadSettings, n: number): number {
  const ceiling = Math.min(settings.maxRetryDelayMs, settings.retryDelayMs * 2 ** (n - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Reads a whole response body as the chunks it arrived in, counting bytes into `got`. */
async function collect(body: AsyncIterable<Uint8Array>, got: { bytes: number }): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of body) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.length);
    chunks.push(b);
    got.bytes += b.length;
  }
  return chunks;
}

/**
 * One download while its stream runs: the object's size and ETag, the ranges
 * fetched or in flight, the counters. The Readable in {@link s3Download} forwards to it.
 */
class DownloadSession {
  readonly where: string;
  readonly head: Promise<S3ObjectHead>;
  /** Set right after construction: the stream the ranges are pushed to. */
  stream!: Readable;
  delivered = 0;
  retriedRanges = 0;
  private readonly cancel = new AbortController();
  private size: number | undefined;
  private etag: string | undefined;
  private next = 0;
  private readonly queue: Promise<Buffer[]>[] = [];
  private pumping = false;
  private settleHead!: { resolve: (h: S3ObjectHead) => void; reject: (e: unknown) => void };

  constructor(
    private readonly opts: S3DownloadOptions,
    readonly settings: DownloadSettings,
  ) {
    this.where = `s3://${opts.bucket}/${opts.key}`;
    this.size = opts.size;
    this.etag = opts.etag;
    this.head = handled(
      new Promise<S3ObjectHead>((resolve, reject) => (this.settleHead = { resolve, reject })),
    );
  }

  /** The Readable's `construct`: learns size and ETag (HEAD unless known and not asked for). */
  construct(callback: (err?: Error) => void): void {
    const { size, etag } = this;
    if (!this.opts.readMetadata && size !== undefined && (etag !== undefined || size === 0)) {
      this.settleHead.resolve({ size, etag, metadata: undefined });
      callback();
      return;
    }
    this.opts.client
      .send(
        new (s3Sdk().HeadObjectCommand)({
          Bucket: this.opts.bucket,
          Key: this.opts.key,
          ...(etag !== undefined ? { IfMatch: etag } : {}),
        }),
        { abortSignal: this.cancel.signal },
      )
      .then(
        (res) => {
          const known = (this.size ??= res.ContentLength ?? 0);
          this.etag ??= res.ETag;
          this.settleHead.resolve({ size: known, etag: this.etag, metadata: res.Metadata ?? {} });
          callback();
        },
        (err: unknown) => {
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata
            ?.httpStatusCode;
          const why =
            status === 412
              ? `the object changed since it was listed (its ETag is no longer ${etag}); list again`
              : describeError(err);
          const e = new StoreError(`${this.where}: ${why}`, { cause: err });
          this.settleHead.reject(e);
          callback(e);
        },
      );
  }

  /** The Readable's `read`: starts the pump unless it runs. */
  read(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.pump().then(
      () => undefined,
      (err: unknown) => {
        this.pumping = false;
        this.stream.destroy(err as Error);
      },
    );
  }

  /** Pushes ranges in order while the consumer wants more; ends the stream after the last. */
  private async pump(): Promise<void> {
    const { stream } = this;
    for (;;) {
      this.fill();
      const head = this.queue.shift();
      if (head === undefined) {
        stream.push(null);
        return;
      }
      const chunks = await head;
      if (stream.destroyed) return;
      this.fill();
      let more = true;
      for (const c of chunks) {
        this.delivered += c.length;
        more = stream.push(c);
      }
      // Cleared before Node may ask again: a _read during push() is served by this loop.
      if (!more) {
        this.pumping = false;
        return;
      }
    }
  }

  /** Requests ranges until `jobs` are fetched or waiting. */
  private fill(): void {
    const { jobs, rangeSize } = this.settings;
    while (this.queue.length < jobs && this.size !== undefined && this.next < this.size) {
      const start = this.next;
      const end = Math.min(this.size, start + rangeSize);
      this.next = end;
      this.queue.push(handled(this.fetchRange(start, end)));
    }
  }

  /** One range, pinned to the ETag, retried on its own up to `attempts` times. */
  private async fetchRange(start: number, end: number): Promise<Buffer[]> {
    for (let attempt = 1; ; attempt++) {
      const got = { bytes: 0 };
      try {
        const res = await this.opts.client.send(
          new (s3Sdk().GetObjectCommand)({
            Bucket: this.opts.bucket,
            Key: this.opts.key,
            Range: `bytes=${start}-${end - 1}`,
            ...(this.etag !== undefined ? { IfMatch: this.etag } : {}),
          }),
          { abortSignal: this.cancel.signal },
        );
        const chunks = await collect(res.Body as AsyncIterable<Uint8Array>, got);
        if (got.bytes !== end - start) {
          throw Object.assign(new Error(`response body ended early`), { code: 'ECONNRESET' });
        }
        if (attempt > 1) this.retriedRanges += 1;
        return chunks;
      } catch (err) {
        if (this.cancel.signal.aborted) throw err;
        if (attempt >= this.settings.attempts || !isRetryable(err)) {
          const tries = attempt > 1 ? ` after ${attempt} attempts` : '';
          throw new StoreError(
            `${this.where}: GetObject bytes ${start}-${end - 1} failed${tries}: ${rangeFailure(err, got.bytes, end - start)}`,
            { cause: err },
          );
        }
        debug('retrying S3 range', {
          key: this.opts.key,
          start,
          attempt,
          error: describeError(err),
        });
        await sleep(backoff(this.settings, attempt), this.cancel.signal);
      }
    }
  }

  /** The Readable's `destroy`: rejects `head` if still open and cancels the requests. */
  destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.settleHead.reject(err ?? new AbortedError(`${this.where}: download destroyed`));
    this.cancel.abort(err ?? new AbortedError('download destroyed'));
    this.queue.length = 0;
    callback(err);
  }
}
