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
 * stage holds at most `jobs` parts (each by reference, never copied). With the
 * chunker (≤ 2 parts) and skip-uploaded (≤ 1) in front, a whole upload holds at
 * most (jobs + 3) × part size.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { s3Sdk } from '../s3/aws-sdk.js';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { AbortedError, StoreError, UsageError, describeError } from '../errors.js';
import { debug } from '../log.js';
import { copyObject } from '../s3/multipart.js';
import { describeS3Failure } from '../s3/s3-client.js';
import type { Part } from '../streams/chunker.js';
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
  const { client, bucket, key } = opts;
  if (!client || typeof bucket !== 'string' || bucket === '' || typeof key !== 'string') {
    throw new UsageError('s3Upload: client, bucket and key are required');
  }
  const jobs = opts.jobs ?? 4;
  if (!(Number.isSafeInteger(jobs) && jobs >= 1)) {
    throw new UsageError(`s3Upload: jobs must be a positive integer, got ${jobs}`);
  }
  const minPartSize = opts.minPartSize ?? S3_MIN_PART_SIZE;
  if (!(Number.isSafeInteger(minPartSize) && minPartSize >= 0)) {
    throw new UsageError(`s3Upload: minPartSize must be a non-negative integer`);
  }
  const encrypt = opts.encrypt ?? true;
  const cancel = new AbortController();
  const where = `s3://${bucket}/${key}`;
  let uploadId = opts.uploadId;
  const completed = new Map<number, CompletedPart>();
  const running = new Set<Promise<void>>();
  let waiting: (() => void) | undefined;
  let failure: unknown;
  let bytes = 0;
  let uploadedParts = 0;
  let skippedParts = 0;
  let lastSeen = false;
  /** Part 1 when it is also the last and no upload exists yet: stored by a PutObject in `final`. */
  let single: UploadFrame | undefined;
  let creating: Promise<void> | undefined;
  let settle!: { resolve: (r: S3UploadResult) => void; reject: (e: unknown) => void };
  const result = handled(
    new Promise<S3UploadResult>((resolve, reject) => (settle = { resolve, reject })),
  );

  const uploadPart = async (frame: UploadFrame): Promise<void> => {
    const md5 = frame.md5 ?? createHash('md5').update(frame.data).digest();
    for (let attempt = 1; ; attempt++) {
      const res = await client.send(
        new (s3Sdk().UploadPartCommand)({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: frame.partNumber,
          Body: frame.data,
          ContentLength: frame.data.length,
          ContentMD5: md5.toString('base64'),
        }),
        { abortSignal: cancel.signal },
      );
      const etag = res.ETag;
      if (etag === undefined) throw new StoreError(`${where}: part ${frame.partNumber}: no ETag`);
      const isMd5 = /^"?[0-9a-fA-F]{32}"?$/.test(etag);
      if (!isMd5 || etag.replace(/"/g, '').toLowerCase() === md5.toString('hex')) {
        completed.set(frame.partNumber, { PartNumber: frame.partNumber, ETag: etag });
        uploadedParts += 1;
        opts.onPart?.({ partNumber: frame.partNumber, bytes: frame.data.length, skipped: false });
        return;
      }
      if (attempt >= 2) {
        throw new StoreError(
          `${where}: part ${frame.partNumber} arrived damaged twice (ETag ${etag}, MD5 ${md5.toString('hex')})`,
        );
      }
    }
  };

  /** Creates the multipart upload (once) unless one was given. */
  const ensureUpload = (): Promise<void> => {
    if (uploadId !== undefined) return Promise.resolve();
    creating ??= client
      .send(
        new (s3Sdk().CreateMultipartUploadCommand)({
          Bucket: bucket,
          Key: key,
          ...(encrypt ? { ServerSideEncryption: 'AES256' } : {}),
          ...(opts.metadata !== undefined ? { Metadata: opts.metadata } : {}),
        }),
        { abortSignal: cancel.signal },
      )
      .then(
        (res) => {
          uploadId = res.UploadId;
          if (uploadId === undefined) throw new StoreError(`${where}: no upload id returned`);
          debug('created multipart upload', { key, uploadId });
        },
        (err: unknown) => {
          throw cancel.signal.aborted
            ? err
            : new StoreError(`${where}: ${describeError(err)}`, { cause: err });
        },
      );
    return creating;
  };

  /** Stores a one-part stream with one PutObject carrying the final metadata. */
  const putSingle = async (frame: UploadFrame, metadata: Record<string, string>) => {
    const md5 = frame.md5 ?? createHash('md5').update(frame.data).digest();
    const res = await client.send(
      new (s3Sdk().PutObjectCommand)({
        Bucket: bucket,
        Key: key,
        Body: frame.data,
        ContentLength: frame.data.length,
        ContentMD5: md5.toString('base64'),
        Metadata: metadata,
        ...(encrypt ? { ServerSideEncryption: 'AES256' as const } : {}),
      }),
      { abortSignal: cancel.signal },
    );
    const etag = res.ETag;
    if (
      etag !== undefined &&
      /^"?[0-9a-fA-F]{32}"?$/.test(etag) &&
      etag.replace(/"/g, '').toLowerCase() !== md5.toString('hex')
    ) {
      throw new StoreError(
        `${where}: stored with ETag ${etag}, not the MD5 ${md5.toString('hex')} of the bytes sent`,
      );
    }
    uploadedParts += 1;
    opts.onPart?.({ partNumber: 1, bytes: frame.data.length, skipped: false });
    debug('stored single-part object', { key, bytes: frame.data.length });
    return etag;
  };

  const fail = (err: unknown) => {
    if (failure === undefined) failure = err;
    if (!stream.destroyed) stream.destroy(err as Error);
  };

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
      const n = frame.partNumber;
      if (!Number.isSafeInteger(n) || n < 1 || n > S3_MAX_PARTS) {
        callback(new UsageError(`${where}: part number ${n} is outside 1–${S3_MAX_PARTS}`));
        return;
      }
      if (lastSeen || completed.has(n)) {
        callback(new UsageError(`${where}: part ${n} after the last part or twice`));
        return;
      }
      if (!frame.last && frame.data.length < minPartSize) {
        callback(
          new UsageError(
            `${where}: part ${n} has ${frame.data.length} bytes; S3 parts except the last need ≥ ${minPartSize}`,
          ),
        );
        return;
      }
      lastSeen = frame.last;
      bytes += frame.data.length;
      if (n === 1 && frame.last && uploadId === undefined && frame.uploadedETag === undefined) {
        single = frame;
        callback();
        return;
      }
      if (frame.uploadedETag !== undefined) {
        completed.set(n, { PartNumber: n, ETag: frame.uploadedETag });
        skippedParts += 1;
        opts.onPart?.({ partNumber: n, bytes: frame.data.length, skipped: true });
        callback();
        return;
      }
      const task = ensureUpload()
        .then(() => uploadPart(frame))
        .then(
          () => {
            running.delete(task);
            const w = waiting;
            waiting = undefined;
            w?.();
          },
          (err: unknown) => {
            running.delete(task);
            fail(
              cancel.signal.aborted ||
                (err instanceof StoreError && err.message.startsWith(`${where}: `))
                ? err
                : new StoreError(`${where}: part ${n}: ${describeS3Failure('UploadPart', err)}`, {
                    cause: err,
                  }),
            );
          },
        );
      running.add(task);
      if (running.size < jobs) callback();
      else waiting = () => callback();
    },
    final(callback) {
      (async () => {
        while (running.size > 0) await Promise.all([...running]);
        if (failure !== undefined) throw failure;
        opts.signal?.throwIfAborted();
        if (!lastSeen) throw new StoreError(`${where}: the stream ended without a last part`);
        const metadata = { ...opts.metadata, ...opts.finalMetadata?.({ bytes }) };
        if (single !== undefined) {
          const etag = await putSingle(single, metadata);
          const out: S3UploadResult = {
            key,
            uploadId: undefined,
            etag,
            bytes,
            metadata,
            parts: 1,
            uploadedParts,
            skippedParts,
          };
          await opts.onComplete?.(out);
          return out;
        }
        const parts = [...completed.values()].sort((a, b) => a.PartNumber! - b.PartNumber!);
        parts.forEach((p, i) => {
          if (p.PartNumber !== i + 1) {
            throw new StoreError(`${where}: part ${i + 1} is missing; not completing the upload`);
          }
        });
        const res = await client.send(
          new (s3Sdk().CompleteMultipartUploadCommand)({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
          { abortSignal: cancel.signal },
        );
        debug('completed multipart upload', { key, uploadId, parts: parts.length, bytes });
        let etag = res.ETag;
        if (opts.finalMetadata !== undefined) {
          // Server-side, pinned to the object just completed; the bytes stay as they are.
          etag = await copyObject(client, {
            bucket,
            key,
            sourceKey: key,
            size: bytes,
            metadata,
            encrypt,
            jobs,
            signal: cancel.signal,
            ...(res.ETag !== undefined ? { ifMatch: res.ETag } : {}),
            ...(opts.maxSingleCopy !== undefined ? { maxSingleCopy: opts.maxSingleCopy } : {}),
          }).catch((err: unknown) => {
            throw new StoreError(
              `${where}: completed, but recording its metadata failed: ${describeError(err)}`,
              { cause: err },
            );
          });
          debug('recorded final metadata', { key, metadata });
        }
        const out: S3UploadResult = {
          key,
          uploadId: uploadId!,
          etag,
          bytes,
          metadata,
          parts: parts.length,
          uploadedParts,
          skippedParts,
        };
        await opts.onComplete?.(out);
        return out;
      })().then(
        (out) => {
          settle.resolve(out);
          callback();
        },
        (err: unknown) => {
          settle.reject(err);
          callback(err as Error);
        },
      );
    },
    destroy(err, callback) {
      cancel.abort(err ?? new AbortedError('s3 upload destroyed'));
      waiting = undefined;
      Promise.allSettled([...running]).then(() => {
        settle.reject(
          err ?? failure ?? new AbortedError(`${where}: upload destroyed before completion`),
        );
        if (uploadId !== undefined) {
          debug('multipart upload left open for resume', { key, uploadId, parts: completed.size });
        }
        callback(err);
      });
    },
  });
  destroyOnAbort(stream, opts.signal);
  return sinkStage('s3-upload', stream, result);
}
