/**
 * skip-uploaded: the resume step of a multipart upload. Takes the chunker's
 * {@link Part} frames, takes each part's MD5 (the upload sink sends it as
 * Content-MD5) from the digests the chunker computed as the part filled (computing
 * it here only for a part that comes without) and marks a part as already uploaded when the open upload has a
 * part with that number, the same size and a matching checksum: the additional
 * checksum when the upload recorded one, else the ETag when it is the part's MD5
 * (unencrypted and SSE-S3 uploads). Anything that does not match is uploaded
 * again; nothing is assumed from a part number alone, because a send stream is
 * not promised to be byte-for-byte repeatable.
 *
 * Buffering/backpressure: object mode both sides, at most one part held (the
 * readable side's highWaterMark is 0: a part is handed on only when the sink
 * asks, and the next is not taken in before). Parts are passed by reference,
 * never copied. A part's bytes are hashed again only when the open upload recorded
 * an additional checksum for it (SHA-256, SHA-1, CRC32, CRC32C).
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { createCRC32 } from 'hash-wasm';
import type { IHasher } from 'hash-wasm';
import { UsageError } from '../errors.js';
import type { Part } from '../streams/chunker.js';
import { resultTransformStage } from '../streams/make-stage.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';
import type { UploadFrame } from './s3-upload.js';

/** What the open upload recorded for one part. */
export interface RecordedPart {
  /** ETag as S3 returns it (quotes allowed). */
  readonly etag: string;
  /** Part size in bytes. */
  readonly size: number;
  /** Additional checksums (base64), when the upload was created with a ChecksumAlgorithm. */
  readonly checksums?: Partial<Record<'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256', string>>;
}

/** Options of {@link skipUploaded}. */
export interface SkipUploadedOptions extends StageOptions {
  /** Parts already uploaded, by part number (1-based). Empty: nothing is skipped. */
  uploaded: ReadonlyMap<number, RecordedPart>;
}

/** What {@link skipUploaded} did. */
export interface SkipUploadedResult {
  /** Parts seen. */
  parts: number;
  /** Parts found uploaded with matching content, and their bytes. */
  skippedParts: number;
  skippedBytes: number;
  /** Parts the upload had with different content (they are uploaded again). */
  mismatchedParts: number;
}

const CRC32C_POLYNOMIAL = 0x82f63b78;

/** True when `etag` (quotes allowed) is a plain MD5 (32 hex digits). */
export function etagIsMd5(etag: string): boolean {
  return /^"?[0-9a-fA-F]{32}"?$/.test(etag);
}

/**
 * True when `data` (whose MD5 is `md5`) has the content `recorded` describes.
 * `crc` supplies CRC hashers (hash-wasm) for uploads with CRC checksums.
 */
export function partMatches(
  data: Buffer,
  md5: Buffer,
  recorded: RecordedPart,
  crc: { crc32: IHasher; crc32c: IHasher },
): boolean {
  if (recorded.size !== data.length) return false;
  const c = recorded.checksums;
  if (c?.SHA256) return createHash('sha256').update(data).digest('base64') === c.SHA256;
  if (c?.SHA1) return createHash('sha1').update(data).digest('base64') === c.SHA1;
  for (const [algo, hasher] of [
    ['CRC32C', crc.crc32c],
    ['CRC32', crc.crc32],
  ] as const) {
    const want = c?.[algo];
    if (!want) continue;
    hasher.init();
    hasher.update(data);
    return Buffer.from(hasher.digest('binary')).toString('base64') === want;
  }
  if (!etagIsMd5(recorded.etag)) return false;
  return recorded.etag.replace(/"/g, '').toLowerCase() === md5.toString('hex');
}

/**
 * A transform stage: {@link Part} frames in, {@link UploadFrame}s out (each with its
 * `md5`; `uploadedETag` set on the parts to skip), in order.
 *
 * Contract: a part is marked uploaded only when its size and checksum match the
 * recorded part; the output has exactly the input's parts. Result: counts, once
 * the stream finished. Throws UsageError for invalid options.
 */
export function skipUploaded(opts: SkipUploadedOptions): TransformStage<SkipUploadedResult> {
  if (!(opts.uploaded instanceof Map)) {
    throw new UsageError('skipUploaded: uploaded must be a Map of part number to recorded part');
  }
  const uploaded = opts.uploaded;
  const counts: SkipUploadedResult = {
    parts: 0,
    skippedParts: 0,
    skippedBytes: 0,
    mismatchedParts: 0,
  };
  let crc: { crc32: IHasher; crc32c: IHasher } | undefined;
  const stream = new Transform({
    objectMode: true,
    writableHighWaterMark: 1,
    readableHighWaterMark: 0,
    construct(callback) {
      Promise.all([createCRC32(), createCRC32(CRC32C_POLYNOMIAL)]).then(
        ([crc32, crc32c]) => {
          crc = { crc32, crc32c };
          callback();
        },
        (err: unknown) => callback(err as Error),
      );
    },
    transform(part: Part, _encoding, callback) {
      try {
        const md5 = part.digests?.md5 ?? createHash('md5').update(part.data).digest();
        counts.parts += 1;
        const recorded = uploaded.get(part.partNumber);
        let frame: UploadFrame = { ...part, md5 };
        if (recorded !== undefined) {
          if (partMatches(part.data, md5, recorded, crc!)) {
            counts.skippedParts += 1;
            counts.skippedBytes += part.data.length;
            frame = { ...frame, uploadedETag: recorded.etag };
          } else counts.mismatchedParts += 1;
        }
        callback(null, frame);
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  return resultTransformStage('skip-uploaded', stream, () => ({ ...counts }), opts);
}
