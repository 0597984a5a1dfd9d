/**
 * Multipart-upload bookkeeping shared by the S3 store and its stages: listing open
 * uploads and their parts (every page), and choosing the upload a rerun resumes.
 */
import { s3Sdk } from '../../stages/aws-sdk.js';
import type { S3Client } from '@aws-sdk/client-s3';

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
