/**
 * Multipart-upload bookkeeping shared by the S3 store and its stages: listing open
 * uploads and their parts (every page), choosing the upload a rerun resumes, and
 * server-side copies (CopyObject, or UploadPartCopy above 5 GiB) that keep or
 * replace the object's user metadata.
 */
import { s3Sdk } from './aws-sdk.js';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { describeError } from '../errors.js';
import { debug } from '../log.js';
import { mapLimit } from '../streams/highland-adapter.js';

const GiB = 1024 * 1024 * 1024;
/** Largest object one CopyObject may copy (S3). */
export const MAX_SINGLE_COPY = 5 * GiB;
/** S3's most parts per upload. */
const MAX_PARTS = 10_000;

/** An open (not completed, not aborted) multipart upload. */
export interface OpenUpload {
  readonly key: string;
  readonly uploadId: string;
  readonly initiated?: Date;
}

/** A part S3 recorded for an open upload. */
export interface UploadedPart {
  readonly partNumber: number;
  /** As S3 returns it, quotes included. The MD5 of the part for unencrypted and SSE-S3 uploads. */
  readonly etag: string;
  readonly size: number;
  /** Additional checksums (base64) when the upload was created with a ChecksumAlgorithm. */
  readonly checksums?: Partial<Record<'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256', string>>;
}

/** An open upload chosen for resuming, with its parts. */
export interface ResumableUpload extends OpenUpload {
  /** Its parts by part number. */
  readonly parts: ReadonlyMap<number, UploadedPart>;
  /** Other open uploads of the same key (aborted once this one completes). */
  readonly others: readonly OpenUpload[];
}

/** Options of the listing helpers. */
export interface ListOptions {
  signal?: AbortSignal;
}

/** Every open multipart upload whose key starts with `prefix` (all pages). */
export async function listOpenUploads(
  client: S3Client,
  bucket: string,
  prefix: string,
  opts: ListOptions = {},
): Promise<OpenUpload[]> {
  const out: OpenUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(
      new (s3Sdk().ListMultipartUploadsCommand)({
        Bucket: bucket,
        Prefix: prefix,
        ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
        ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
      }),
      opts.signal ? { abortSignal: opts.signal } : {},
    );
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined) continue;
      out.push({
        key: u.Key,
        uploadId: u.UploadId,
        ...(u.Initiated ? { initiated: u.Initiated } : {}),
      });
    }
    if (!page.IsTruncated) return out;
    const nextKey = page.NextKeyMarker;
    const nextId = page.NextUploadIdMarker;
    if (nextKey === keyMarker && nextId === uploadIdMarker) return out;
    keyMarker = nextKey;
    uploadIdMarker = nextId;
  }
}

/** Every part of an open upload (all pages), by part number. */
export async function listUploadedParts(
  client: S3Client,
  bucket: string,
  upload: OpenUpload,
  opts: ListOptions = {},
): Promise<Map<number, UploadedPart>> {
  const parts = new Map<number, UploadedPart>();
  let marker: string | undefined;
  for (;;) {
    const page = await client.send(
      new (s3Sdk().ListPartsCommand)({
        Bucket: bucket,
        Key: upload.key,
        UploadId: upload.uploadId,
        ...(marker !== undefined ? { PartNumberMarker: marker } : {}),
      }),
      opts.signal ? { abortSignal: opts.signal } : {},
    );
    for (const p of page.Parts ?? []) {
      if (p.PartNumber === undefined || p.ETag === undefined || p.Size === undefined) continue;
      const checksums: NonNullable<UploadedPart['checksums']> = {};
      if (p.ChecksumCRC32) checksums.CRC32 = p.ChecksumCRC32;
      if (p.ChecksumCRC32C) checksums.CRC32C = p.ChecksumCRC32C;
      if (p.ChecksumSHA1) checksums.SHA1 = p.ChecksumSHA1;
      if (p.ChecksumSHA256) checksums.SHA256 = p.ChecksumSHA256;
      parts.set(p.PartNumber, {
        partNumber: p.PartNumber,
        etag: p.ETag,
        size: p.Size,
        ...(Object.keys(checksums).length > 0 ? { checksums } : {}),
      });
    }
    if (!page.IsTruncated) return parts;
    const next = page.NextPartNumberMarker;
    if (next === undefined || next === marker) return parts;
    marker = next;
  }
}

/**
 * The open upload of exactly `key` a rerun should resume: the one with the most
 * uploaded bytes (ties: the latest initiated), or undefined when there is none.
 */
export async function findResumableUpload(
  client: S3Client,
  bucket: string,
  key: string,
  opts: ListOptions = {},
): Promise<ResumableUpload | undefined> {
  const uploads = (await listOpenUploads(client, bucket, key, opts)).filter((u) => u.key === key);
  let best: { upload: OpenUpload; parts: Map<number, UploadedPart>; bytes: number } | undefined;
  for (const upload of uploads) {
    const parts = await listUploadedParts(client, bucket, upload, opts);
    let bytes = 0;
    for (const p of parts.values()) bytes += p.size;
    const later =
      best !== undefined &&
      bytes === best.bytes &&
      (upload.initiated?.getTime() ?? 0) >= (best.upload.initiated?.getTime() ?? 0);
    if (best === undefined || bytes > best.bytes || later) best = { upload, parts, bytes };
  }
  if (best === undefined) return undefined;
  const chosen = best.upload;
  return {
    ...chosen,
    parts: best.parts,
    others: uploads.filter((u) => u.uploadId !== chosen.uploadId),
  };
}

/** Aborts an open upload; one that is already gone (NoSuchUpload) counts as aborted. */
export async function abortUpload(
  client: S3Client,
  bucket: string,
  upload: OpenUpload,
  opts: ListOptions = {},
): Promise<void> {
  try {
    await client.send(
      new (s3Sdk().AbortMultipartUploadCommand)({
        Bucket: bucket,
        Key: upload.key,
        UploadId: upload.uploadId,
      }),
      opts.signal ? { abortSignal: opts.signal } : {},
    );
  } catch (err) {
    if ((err as { name?: unknown }).name !== 'NoSuchUpload') throw err;
  }
}

/** Options of {@link copyObject}. */
export interface CopyObjectOptions extends ListOptions {
  /** Target bucket and key. */
  bucket: string;
  key: string;
  /** Source key, in `sourceBucket` (default: `bucket`). May be `key` itself. */
  sourceKey: string;
  sourceBucket?: string;
  /** Source object size, bytes. */
  size: number;
  /**
   * User metadata of the copy. Default: the source's, kept (CopyObject with
   * MetadataDirective COPY; a multipart copy reads it with a HEAD and sets it on
   * CreateMultipartUpload). A record replaces it (MetadataDirective REPLACE).
   */
  metadata?: Record<string, string>;
  /** Copy only while the source has this ETag (CopySourceIfMatch). */
  ifMatch?: string;
  /** Server-side encryption (SSE-S3, AES256) of the copy. Default true. */
  encrypt?: boolean;
  /** Parts of a multipart copy at least this big, bytes. Default 1 GiB. */
  partSize?: number;
  /** Part copies at once. Default 4. */
  jobs?: number;
  /** Largest object copied with one CopyObject. Default 5 GiB (S3's limit). */
  maxSingleCopy?: number;
}

/**
 * Server-side copy of one object: CopyObject up to `maxSingleCopy`, a multipart
 * UploadPartCopy above (aborted again when it fails). Resolves with the copy's ETag.
 * No byte passes through this machine.
 */
export async function copyObject(
  client: S3Client,
  o: CopyObjectOptions,
): Promise<string | undefined> {
  const sourceBucket = o.sourceBucket ?? o.bucket;
  const copySource = `${sourceBucket}/${o.sourceKey.split('/').map(encodeURIComponent).join('/')}`;
  if (o.size <= (o.maxSingleCopy ?? MAX_SINGLE_COPY)) return copyAtOnce(client, o, copySource);
  return copyInParts(client, o, copySource);
}

/** The SDK's options for `o`'s signal. */
const sdkSignal = (o: CopyObjectOptions) => (o.signal ? { abortSignal: o.signal } : {});

/** Server-side encryption headers for `o`. */
const sseOf = (o: CopyObjectOptions) =>
  (o.encrypt ?? true) ? { ServerSideEncryption: 'AES256' as const } : {};

/** One CopyObject (objects up to 5 GiB): metadata copied, or replaced by `o.metadata`. */
async function copyAtOnce(
  client: S3Client,
  o: CopyObjectOptions,
  copySource: string,
): Promise<string | undefined> {
  const res = await client.send(
    new (s3Sdk().CopyObjectCommand)({
      Bucket: o.bucket,
      Key: o.key,
      CopySource: copySource,
      ...(o.ifMatch !== undefined ? { CopySourceIfMatch: o.ifMatch } : {}),
      ...(o.metadata !== undefined
        ? { MetadataDirective: 'REPLACE' as const, Metadata: o.metadata }
        : { MetadataDirective: 'COPY' as const }),
      ...sseOf(o),
    }),
    sdkSignal(o),
  );
  return res.CopyObjectResult?.ETag;
}

/**
 * A multipart upload of UploadPartCopy ranges, `o.jobs` at once, with the
 * source's metadata and content type unless `o.metadata` is given; the upload
 * is aborted again when any step fails.
 */
async function copyInParts(
  client: S3Client,
  o: CopyObjectOptions,
  copySource: string,
): Promise<string | undefined> {
  const sig = sdkSignal(o);
  const head = o.metadata === undefined ? await headOfSource(client, o) : undefined;
  const created = await client.send(
    new (s3Sdk().CreateMultipartUploadCommand)({
      Bucket: o.bucket,
      Key: o.key,
      Metadata: o.metadata ?? head?.Metadata ?? {},
      ...(head?.ContentType !== undefined ? { ContentType: head.ContentType } : {}),
      ...sseOf(o),
    }),
    sig,
  );
  const upload = { key: o.key, uploadId: created.UploadId! };
  try {
    const parts: CompletedPart[] = await mapLimit(
      copyRanges(o),
      o.jobs ?? 4,
      async (r) => {
        const res = await client.send(
          new (s3Sdk().UploadPartCopyCommand)({
            Bucket: o.bucket,
            Key: o.key,
            UploadId: upload.uploadId,
            PartNumber: r.n,
            CopySource: copySource,
            CopySourceRange: `bytes=${r.start}-${r.end}`,
            ...(o.ifMatch !== undefined ? { CopySourceIfMatch: o.ifMatch } : {}),
          }),
          sig,
        );
        return { PartNumber: r.n, ETag: res.CopyPartResult?.ETag };
      },
      o.signal ? { signal: o.signal } : {},
    );
    const done = await client.send(
      new (s3Sdk().CompleteMultipartUploadCommand)({
        Bucket: o.bucket,
        Key: o.key,
        UploadId: upload.uploadId,
        MultipartUpload: { Parts: parts },
      }),
      sig,
    );
    return done.ETag;
  } catch (err) {
    await abortUpload(client, o.bucket, upload).catch((e: unknown) =>
      debug('could not abort a failed multipart copy', {
        key: o.key,
        error: describeError(e),
      }),
    );
    throw err;
  }
}

/** HeadObject of the copy's source (with `o.ifMatch`), for its metadata and content type. */
async function headOfSource(client: S3Client, o: CopyObjectOptions) {
  return client.send(
    new (s3Sdk().HeadObjectCommand)({
      Bucket: o.sourceBucket ?? o.bucket,
      Key: o.sourceKey,
      ...(o.ifMatch !== undefined ? { IfMatch: o.ifMatch } : {}),
    }),
    sdkSignal(o),
  );
}

/** The byte ranges of the parts (inclusive ends): at least 1 GiB each, at most MAX_PARTS of them. */
function copyRanges(o: CopyObjectOptions): { n: number; start: number; end: number }[] {
  const partSize = Math.max(o.partSize ?? 0, Math.ceil(o.size / MAX_PARTS), GiB);
  const ranges: { n: number; start: number; end: number }[] = [];
  for (let start = 0, n = 1; start < o.size; start += partSize, n++) {
    ranges.push({ n, start, end: Math.min(o.size, start + partSize) - 1 });
  }
  return ranges;
}
