/**
 * s3-upload: the multipart-upload sink. Takes {@link Part} frames (from the chunker,
 * optionally marked by skip-uploaded), uploads each with its Content-MD5, `jobs` at
 * a time, and completes the upload only in `final`, i.e. after the whole stream
 * arrived and every stage before it ended without error. A failed, destroyed or
 * aborted stream leaves the multipart upload open, to be resumed by a rerun or
 * aborted by `--delete` on a listing.
 *
 * The multipart upload is created when the first part arrives. A stream that is one
 * part only is stored with one PutObject in `final` instead (nothing to resume).
 * User metadata known only at the end (the whole-stream digest: `finalMetadata`) is
 * on the object when it appears for a PutObject; a multipart upload was created before
 * those bytes were seen, so it is created with `metadata` (e.g. a `pending` marker),
 * completed, and then copied onto itself server-side with the final metadata.
 *
 * Buffering/backpressure: object mode, highWaterMark 1. A write starts that part's
 * upload at once and its callback waits while `jobs` uploads are running, so the
 * stage holds at most `jobs` parts (each by reference, never copied). With a
 * {@link PartBudget} shared with the chunker (limit jobs + 1), a part's unit is
 * released as soon as the part is uploaded or recorded as skipped, so a whole
 * upload holds at most (jobs + 1) parts: `jobs` being sent, one being filled.
 *
 * Hashes: a part's Content-MD5 and the SHA-256 the request signature covers come
 * from the digests the chunker computed as the part filled (`Part.digests`); the
 * SHA-256 is handed to the SDK as the `x-amz-content-sha256` header so its signer
 * does not hash the body again on every attempt.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { s3Sdk } from '../s3/aws-sdk.js';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { AbortedError, StoreError, UsageError, describeError } from '../errors.js';
import { debug } from '../log.js';
import { copyObject } from '../s3/multipart.js';
import { describeS3Failure, requireS3Object } from '../s3/s3-client.js';
import type { Part } from '../streams/chunker.js';
import type { PartBudget } from '../streams/part-budget.js';
import { destroyOnAbort, handled, sinkStage } from '../streams/stage.js';
import type { SinkStage, StageOptions } from '../streams/stage.js';

/** S3's smallest part (except the last), bytes. */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's most parts per upload. */
export const S3_MAX_PARTS = 10_000;

/** A part as the upload sink takes it: a chunker {@link Part}, maybe annotated. */
export interface UploadFrame extends Part {
  /** MD5 of `data`, when a stage before computed it (else the sink does). */
  readonly md5?: Buffer;
  /** Set when this part is already uploaded with this ETag: it is recorded, not sent. */
  readonly uploadedETag?: string;
}

/** Options of {@link s3Upload}. */
export interface S3UploadOptions extends StageOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** Open upload to continue. Default: one is created when the stage starts. */
  uploadId?: string;
  /** Server-side encryption (SSE-S3, AES256) for a created upload. Default true. */
  encrypt?: boolean;
  /** Parts uploaded at once. Default 4. */
  jobs?: number;
  /** Smallest part accepted except the last, bytes. Default 5 MiB (S3's minimum). */
  minPartSize?: number;
  /** Runs after the upload completed, before the stage finishes; a throw fails the stage. */
  onComplete?: (result: S3UploadResult) => Promise<void>;
  /**
   * Parts in memory, shared with the chunker in front: each part's unit is released
   * once the part is uploaded (or failed) or recorded as skipped. Default none.
   */
  budget?: PartBudget;
  /** Called after each part is uploaded or recorded as skipped. */
  onPart?: (part: { partNumber: number; bytes: number; skipped: boolean }) => void;
  /** User metadata the object is created with (CreateMultipartUpload, or the PutObject). */
  metadata?: Record<string, string>;
  /**
   * User metadata to record on the object, asked for once the whole stream arrived,
   * before anything is completed; merged over `metadata`. A throw fails the stage and
   * nothing is completed.
   */
  finalMetadata?: (info: { bytes: number }) => Record<string, string>;
  /**
   * Largest object whose metadata is replaced by one CopyObject onto itself; larger
   * ones use a multipart copy. Default 5 GiB (S3's limit).
   */
  maxSingleCopy?: number;
}

/** A completed upload. */
export interface S3UploadResult {
  key: string;
  /** The multipart upload; undefined when the stream was one part, stored with one PutObject. */
  uploadId: string | undefined;
  /** ETag of the completed object. */
  etag: string | undefined;
  /** Object size, bytes. */
  bytes: number;
  /** User metadata recorded on the object. */
  metadata: Record<string, string>;
  /** Parts in the object. */
  parts: number;
  /** Parts sent by this run, and parts that were already uploaded. */
  uploadedParts: number;
  skippedParts: number;
}

/**
 * Creates the sink. Throws UsageError for invalid options. Contract: the object
 * appears (CompleteMultipartUpload) only after the stream ended successfully and
 * every part was uploaded and its returned ETag matched its MD5 (where the ETag is
 * an MD5); `result` resolves after `onComplete` finished. On failure or abort the
 * running part uploads are cancelled and the upload stays open.
 */
export function s3Upload(opts: S3UploadOptions): SinkStage<S3UploadResult> {
  const session = new UploadSession(opts, validateOptions(opts));
  const stream = new Writable({
    objectMode: true,
    highWaterMark: 1,
    construct(callback) {
      try {
        opts.signal?.throwIfAborted();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    write(frame: UploadFrame, _encoding, callback) {
      session.write(frame, callback);
    },
    final(callback) {
      session.final(callback);
    },
    destroy(err, callback) {
      session.destroy(err, callback);
    },
  });
  session.stream = stream;
  destroyOnAbort(stream, opts.signal);
  return sinkStage('s3-upload', stream, session.result);
}

/** The options {@link s3Upload} checks and fills in with defaults. */
interface UploadSettings {
  jobs: number;
  minPartSize: number;
  encrypt: boolean;
}

/** Checks the options (UsageError for invalid ones) and applies the defaults. */
function validateOptions(opts: S3UploadOptions): UploadSettings {
  requireS3Object('s3Upload', opts);
  const jobs = opts.jobs ?? 4;
  if (!(Number.isSafeInteger(jobs) && jobs >= 1)) {
    throw new UsageError(`s3Upload: jobs must be a positive integer, got ${jobs}`);
  }
  const minPartSize = opts.minPartSize ?? S3_MIN_PART_SIZE;
  if (!(Number.isSafeInteger(minPartSize) && minPartSize >= 0)) {
    throw new UsageError(`s3Upload: minPartSize must be a non-negative integer`);
  }
  return { jobs, minPartSize, encrypt: opts.encrypt ?? true };
}

/** The MD5 of a frame's bytes: the one a stage before computed, else computed here. */
function frameMd5(frame: UploadFrame): Buffer {
  return frame.md5 ?? frame.digests?.md5 ?? createHash('md5').update(frame.data).digest();
}

/** Name of the middleware {@link withPayloadSha256} adds to a command. */
export const PAYLOAD_SHA256_MIDDLEWARE = 'buttersinkPayloadSha256';

/**
 * `command`, made to send `x-amz-content-sha256: <sha256>` when the chunker computed
 * the body's SHA-256: SigV4 signs that header as the payload hash, and the SDK's
 * signer then does not hash the whole body itself (on every attempt). Unchanged
 * without one.
 */
function withPayloadSha256<C extends { middlewareStack: { add: (...a: never[]) => void } }>(
  command: C,
  sha256: Buffer | undefined,
): C {
  if (sha256 === undefined) return command;
  const hex = sha256.toString('hex');
  const middleware =
    (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => {
      const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers;
      if (headers) headers['x-amz-content-sha256'] = hex;
      return next(args);
    };
  command.middlewareStack.add(
    middleware as never,
    { step: 'build', name: PAYLOAD_SHA256_MIDDLEWARE } as never,
  );
  return command;
}

/** True when `etag` is an MD5 (S3 without SSE-KMS) that is not `md5`: the bytes arrived damaged. */
function etagContradicts(etag: string, md5: Buffer): boolean {
  return (
    /^"?[0-9a-fA-F]{32}"?$/.test(etag) &&
    etag.replace(/"/g, '').toLowerCase() !== md5.toString('hex')
  );
}

/**
 * One upload while its stream runs: the parts in flight and done, the counters, and
 * the S3 calls. The Writable in {@link s3Upload} only forwards to it.
 */
class UploadSession {
  readonly result: Promise<S3UploadResult>;
  /** Set right after construction: the stream this session fails on an upload error. */
  stream!: Writable;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly key: string;
  private readonly where: string;
  private readonly cancel = new AbortController();
  private uploadId: string | undefined;
  private readonly completed = new Map<number, CompletedPart>();
  private readonly running = new Set<Promise<void>>();
  private waiting: (() => void) | undefined;
  private failure: unknown;
  private bytes = 0;
  private uploadedParts = 0;
  private skippedParts = 0;
  private lastSeen = false;
  /** Part 1 when it is also the last and no upload exists yet: stored by a PutObject in `final`. */
  private single: UploadFrame | undefined;
  private creating: Promise<void> | undefined;
  private settle!: { resolve: (r: S3UploadResult) => void; reject: (e: unknown) => void };

  constructor(
    private readonly opts: S3UploadOptions,
    private readonly settings: UploadSettings,
  ) {
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.key = opts.key;
    this.where = `s3://${opts.bucket}/${opts.key}`;
    this.uploadId = opts.uploadId;
    this.result = handled(
      new Promise<S3UploadResult>((resolve, reject) => (this.settle = { resolve, reject })),
    );
  }

  /** Takes one frame; `callback` runs once there is room for the next. */
  write(frame: UploadFrame, callback: (err?: Error) => void): void {
    const refused = this.refusal(frame);
    if (refused !== undefined) {
      callback(refused);
      return;
    }
    const n = frame.partNumber;
    this.lastSeen = frame.last;
    this.bytes += frame.data.length;
    if (n === 1 && frame.last && this.uploadId === undefined && frame.uploadedETag === undefined) {
      this.single = frame;
      callback();
      return;
    }
    if (frame.uploadedETag !== undefined) {
      this.completed.set(n, { PartNumber: n, ETag: frame.uploadedETag });
      this.opts.budget?.release(n);
      this.skippedParts += 1;
      this.opts.onPart?.({ partNumber: n, bytes: frame.data.length, skipped: true });
      callback();
      return;
    }
    this.startPart(frame);
    if (this.running.size < this.settings.jobs) callback();
    else this.waiting = () => callback();
  }

  /** Why a frame cannot be taken (bad number, after the last, too small), or undefined. */
  private refusal(frame: UploadFrame): UsageError | undefined {
    const n = frame.partNumber;
    const { where } = this;
    if (!Number.isSafeInteger(n) || n < 1 || n > S3_MAX_PARTS) {
      return new UsageError(`${where}: part number ${n} is outside 1–${S3_MAX_PARTS}`);
    }
    if (this.lastSeen || this.completed.has(n)) {
      return new UsageError(`${where}: part ${n} after the last part or twice`);
    }
    const { minPartSize } = this.settings;
    if (!frame.last && frame.data.length < minPartSize) {
      return new UsageError(
        `${where}: part ${n} has ${frame.data.length} bytes; S3 parts except the last need ≥ ${minPartSize}`,
      );
    }
    return undefined;
  }

  /** Starts one part's upload in the background; a failure destroys the stream. */
  private startPart(frame: UploadFrame): void {
    const n = frame.partNumber;
    const task = this.ensureUpload()
      .then(() => this.uploadPart(frame))
      .then(
        () => {
          this.running.delete(task);
          this.opts.budget?.release(n);
          const w = this.waiting;
          this.waiting = undefined;
          w?.();
        },
        (err: unknown) => {
          this.running.delete(task);
          this.opts.budget?.release(n);
          this.fail(
            this.cancel.signal.aborted ||
              (err instanceof StoreError && err.message.startsWith(`${this.where}: `))
              ? err
              : new StoreError(
                  `${this.where}: part ${n}: ${describeS3Failure('UploadPart', err)}`,
                  {
                    cause: err,
                  },
                ),
          );
        },
      );
    this.running.add(task);
  }

  /** Uploads one part with its Content-MD5; a damaged arrival is retried once. */
  private async uploadPart(frame: UploadFrame): Promise<void> {
    const md5 = frameMd5(frame);
    for (let attempt = 1; ; attempt++) {
      const res = await this.client.send(
        withPayloadSha256(
          new (s3Sdk().UploadPartCommand)({
            Bucket: this.bucket,
            Key: this.key,
            UploadId: this.uploadId,
            PartNumber: frame.partNumber,
            Body: frame.data,
            ContentLength: frame.data.length,
            ContentMD5: md5.toString('base64'),
          }),
          frame.digests?.sha256,
        ),
        { abortSignal: this.cancel.signal },
      );
      const etag = res.ETag;
      if (etag === undefined) {
        throw new StoreError(`${this.where}: part ${frame.partNumber}: no ETag`);
      }
      if (!etagContradicts(etag, md5)) {
        this.completed.set(frame.partNumber, { PartNumber: frame.partNumber, ETag: etag });
        this.uploadedParts += 1;
        this.opts.onPart?.({
          partNumber: frame.partNumber,
          bytes: frame.data.length,
          skipped: false,
        });
        return;
      }
      if (attempt >= 2) {
        throw new StoreError(
          `${this.where}: part ${frame.partNumber} arrived damaged twice (ETag ${etag}, MD5 ${md5.toString('hex')})`,
        );
      }
    }
  }

  /** Creates the multipart upload (once) unless one was given. */
  private ensureUpload(): Promise<void> {
    if (this.uploadId !== undefined) return Promise.resolve();
    this.creating ??= this.client
      .send(
        new (s3Sdk().CreateMultipartUploadCommand)({
          Bucket: this.bucket,
          Key: this.key,
          ...(this.settings.encrypt ? { ServerSideEncryption: 'AES256' } : {}),
          ...(this.opts.metadata !== undefined ? { Metadata: this.opts.metadata } : {}),
        }),
        { abortSignal: this.cancel.signal },
      )
      .then(
        (res) => {
          this.uploadId = res.UploadId;
          if (this.uploadId === undefined) {
            throw new StoreError(`${this.where}: no upload id returned`);
          }
          debug('created multipart upload', { key: this.key, uploadId: this.uploadId });
        },
        (err: unknown) => {
          throw this.cancel.signal.aborted
            ? err
            : new StoreError(`${this.where}: ${describeError(err)}`, { cause: err });
        },
      );
    return this.creating;
  }

  /** Stores a one-part stream with one PutObject carrying the final metadata. */
  private async putSingle(
    frame: UploadFrame,
    metadata: Record<string, string>,
  ): Promise<string | undefined> {
    const md5 = frameMd5(frame);
    const res = await this.client.send(
      withPayloadSha256(
        new (s3Sdk().PutObjectCommand)({
          Bucket: this.bucket,
          Key: this.key,
          Body: frame.data,
          ContentLength: frame.data.length,
          ContentMD5: md5.toString('base64'),
          Metadata: metadata,
          ...(this.settings.encrypt ? { ServerSideEncryption: 'AES256' as const } : {}),
        }),
        frame.digests?.sha256,
      ),
      { abortSignal: this.cancel.signal },
    );
    const etag = res.ETag;
    if (etag !== undefined && etagContradicts(etag, md5)) {
      throw new StoreError(
        `${this.where}: stored with ETag ${etag}, not the MD5 ${md5.toString('hex')} of the bytes sent`,
      );
    }
    this.uploadedParts += 1;
    this.opts.onPart?.({ partNumber: 1, bytes: frame.data.length, skipped: false });
    debug('stored single-part object', { key: this.key, bytes: frame.data.length });
    return etag;
  }

  /** Records the first failure and destroys the stream with it. */
  private fail(err: unknown): void {
    if (this.failure === undefined) this.failure = err;
    if (!this.stream.destroyed) this.stream.destroy(err as Error);
  }

  /** The Writable's `final`: completes the object and settles `result`. */
  final(callback: (err?: Error) => void): void {
    this.finish().then(
      (out) => {
        this.settle.resolve(out);
        callback();
      },
      (err: unknown) => {
        this.settle.reject(err);
        callback(err as Error);
      },
    );
  }

  /** Waits for the running parts, then stores the object and runs `onComplete`. */
  private async finish(): Promise<S3UploadResult> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    if (this.failure !== undefined) throw this.failure;
    this.opts.signal?.throwIfAborted();
    if (!this.lastSeen) throw new StoreError(`${this.where}: the stream ended without a last part`);
    const metadata = { ...this.opts.metadata, ...this.opts.finalMetadata?.({ bytes: this.bytes }) };
    const out =
      this.single !== undefined
        ? this.outcome(undefined, await this.putSingle(this.single, metadata), metadata, 1)
        : await this.completeMultipart(metadata);
    await this.opts.onComplete?.(out);
    return out;
  }

  /** Completes the multipart upload, then records the final metadata on it if asked to. */
  private async completeMultipart(metadata: Record<string, string>): Promise<S3UploadResult> {
    const parts = [...this.completed.values()].sort((a, b) => a.PartNumber! - b.PartNumber!);
    parts.forEach((p, i) => {
      if (p.PartNumber !== i + 1) {
        throw new StoreError(`${this.where}: part ${i + 1} is missing; not completing the upload`);
      }
    });
    const res = await this.client.send(
      new (s3Sdk().CompleteMultipartUploadCommand)({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: parts },
      }),
      { abortSignal: this.cancel.signal },
    );
    const { key, uploadId, bytes } = this;
    debug('completed multipart upload', { key, uploadId, parts: parts.length, bytes });
    const etag =
      this.opts.finalMetadata !== undefined
        ? await this.recordFinalMetadata(res.ETag, metadata)
        : res.ETag;
    return this.outcome(uploadId!, etag, metadata, parts.length);
  }

  /** Copies the completed object onto itself with `metadata`; returns the new ETag. */
  private async recordFinalMetadata(
    completedETag: string | undefined,
    metadata: Record<string, string>,
  ): Promise<string | undefined> {
    // Server-side, pinned to the object just completed; the bytes stay as they are.
    const etag = await copyObject(this.client, {
      bucket: this.bucket,
      key: this.key,
      sourceKey: this.key,
      size: this.bytes,
      metadata,
      encrypt: this.settings.encrypt,
      jobs: this.settings.jobs,
      signal: this.cancel.signal,
      ...(completedETag !== undefined ? { ifMatch: completedETag } : {}),
      ...(this.opts.maxSingleCopy !== undefined ? { maxSingleCopy: this.opts.maxSingleCopy } : {}),
    }).catch((err: unknown) => {
      throw new StoreError(
        `${this.where}: completed, but recording its metadata failed: ${describeError(err)}`,
        { cause: err },
      );
    });
    debug('recorded final metadata', { key: this.key, metadata });
    return etag;
  }

  /** The result of a completed upload. */
  private outcome(
    uploadId: string | undefined,
    etag: string | undefined,
    metadata: Record<string, string>,
    parts: number,
  ): S3UploadResult {
    return {
      key: this.key,
      uploadId,
      etag,
      bytes: this.bytes,
      metadata,
      parts,
      uploadedParts: this.uploadedParts,
      skippedParts: this.skippedParts,
    };
  }

  /** The Writable's `destroy`: cancels the running parts and leaves the upload open. */
  destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.cancel.abort(err ?? new AbortedError('s3 upload destroyed'));
    this.waiting = undefined;
    void Promise.allSettled([...this.running]).then(() => {
      this.settle.reject(
        err ??
          this.failure ??
          new AbortedError(`${this.where}: upload destroyed before completion`),
      );
      if (this.uploadId !== undefined) {
        debug('multipart upload left open for resume', {
          key: this.key,
          uploadId: this.uploadId,
          parts: this.completed.size,
        });
      }
      callback(err);
    });
  }
}
