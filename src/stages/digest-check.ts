/**
 * Whole-stream digests of stored diffs. A send stream's per-command CRC-32C covers
 * neither the 17-byte stream header nor the sequence of commands: a changed version
 * byte, or a command duplicated or dropped whole, passes every CRC (formats.md). So
 * every diff written to S3 records, as object user metadata, the SHA-256 of the whole
 * stream and the stream version from its header ({@link streamDigest} computes them
 * as the bytes flow to the upload), and every read of a stored diff checks them
 * ({@link digestCheck}) before the consumer can commit anything.
 *
 * Metadata (S3 user metadata, `x-amz-meta-…` on the wire):
 * - `buttersink-sha256`: lowercase hex SHA-256 of every byte of the object; `pending`
 *   while the upload runs (set when the multipart upload is created, replaced when it
 *   completes). Absent on diffs written by the original buttersink.
 * - `buttersink-stream-version`: the le32 version in the stream header, decimal.
 *
 * Buffering/backpressure: both stages are byte-mode Transforms hashing in place
 * (node:crypto, no copy). {@link streamDigest} passes every chunk on at once;
 * {@link digestCheck} holds back the chunks that carry the stream's last
 * `holdBack` bytes (default 10: the END command) until its input ended and the
 * digest matched, so it holds at most `holdBack` bytes plus one input chunk.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { StreamCorruptError, UsageError, describeError } from '../errors.js';
import { debug, warn } from '../log.js';
import { resultTransformStage } from '../streams/make-stage.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** User-metadata key of the whole-stream SHA-256 (hex). */
export const META_SHA256 = 'buttersink-sha256';
/** User-metadata key of the stream version in the header (decimal). */
export const META_STREAM_VERSION = 'buttersink-stream-version';
/** {@link META_SHA256} of an upload that has not completed (or whose digest was never recorded). */
export const DIGEST_PENDING = 'pending';
/** Bytes of an END command (header only, no attributes): what {@link digestCheck} holds back. */
export const END_COMMAND_BYTES = 10;

const MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
const HEADER_BYTES = MAGIC.length + 4;

/** What {@link streamDigest} computed over a whole stream. */
export interface StreamDigest {
  /** SHA-256 of every byte, lowercase hex. */
  readonly sha256: string;
  /** The version in the stream header; undefined when the header is missing or not a send stream's. */
  readonly version: number | undefined;
  /** Bytes hashed. */
  readonly bytes: number;
}

/** What a stored diff's metadata says about its whole-stream digest. */
export type RecordedDigest =
  /** Written by this buttersink: check against these. */
  | { readonly kind: 'recorded'; readonly sha256: string; readonly version: number | undefined }
  /** Written by this buttersink, but the digest was never recorded (upload interrupted while finishing). */
  | { readonly kind: 'pending' }
  /** No digest metadata: written by the original buttersink (or another tool). */
  | { readonly kind: 'none' }
  /** Digest metadata that is not a digest: the object's metadata is damaged. */
  | { readonly kind: 'invalid'; readonly reason: string };

/** The user metadata recording `d` on a stored diff. */
export function digestMetadata(d: StreamDigest): Record<string, string> {
  return {
    [META_SHA256]: d.sha256,
    ...(d.version !== undefined ? { [META_STREAM_VERSION]: String(d.version) } : {}),
  };
}

/** Reads the digest a stored diff's user metadata (keys as the SDK returns them) records. */
export function recordedDigest(
  metadata: Readonly<Record<string, string | undefined>> | undefined,
): RecordedDigest {
  const get = (k: string) => {
    for (const [key, v] of Object.entries(metadata ?? {})) if (key.toLowerCase() === k) return v;
    return undefined;
  };
  const sha = get(META_SHA256)?.trim();
  const ver = get(META_STREAM_VERSION)?.trim();
  if (sha === undefined || sha === '') {
    return ver === undefined ? { kind: 'none' } : { kind: 'invalid', reason: 'no SHA-256' };
  }
  if (sha === DIGEST_PENDING) return { kind: 'pending' };
  if (!/^[0-9a-fA-F]{64}$/.test(sha)) {
    return { kind: 'invalid', reason: `SHA-256 '${sha.slice(0, 80)}'` };
  }
  if (ver !== undefined && !/^[0-9]{1,10}$/.test(ver)) {
    return { kind: 'invalid', reason: `stream version '${ver.slice(0, 80)}'` };
  }
  return {
    kind: 'recorded',
    sha256: sha.toLowerCase(),
    version: ver === undefined ? undefined : Number(ver),
  };
}

/** Collects the first 17 bytes of a stream and reads the version from them. */
class HeaderReader {
  readonly #buf = Buffer.alloc(HEADER_BYTES);
  #have = 0;

  /** Feeds a chunk; true once the header is complete (with this chunk or earlier). */
  feed(chunk: Buffer): boolean {
    if (this.#have < HEADER_BYTES) {
      const n = Math.min(HEADER_BYTES - this.#have, chunk.length);
      chunk.copy(this.#buf, this.#have, 0, n);
      this.#have += n;
    }
    return this.#have === HEADER_BYTES;
  }

  /** The header's version; undefined before 17 bytes arrived or when the magic is wrong. */
  get version(): number | undefined {
    if (this.#have < HEADER_BYTES) return undefined;
    if (!this.#buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    return this.#buf.readUInt32LE(MAGIC.length);
  }
}

class DigestTap extends Transform {
  value: StreamDigest | undefined;
  readonly #hash: Hash = createHash('sha256');
  readonly #header = new HeaderReader();
  #bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#header.feed(chunk);
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.value = {
      sha256: this.#hash.digest('hex'),
      version: this.#header.version,
      bytes: this.#bytes,
    };
    callback();
  }
}

/** The stage {@link streamDigest} returns. */
export interface StreamDigestStage extends TransformStage<StreamDigest> {
  /**
   * The digest, available synchronously once the input ended (the stage flushed),
   * i.e. before any stage after it sees its end. Throws before that.
   */
  digest(): StreamDigest;
}

/**
 * A pass-through tap computing the whole-stream SHA-256 and reading the stream
 * version, for recording with a stored diff. Contract: output = input, unchanged;
 * `digest()`/`result` describe every byte that went through, in order.
 */
export function streamDigest(opts: StageOptions = {}): StreamDigestStage {
  const stream = new DigestTap();
  const stage = resultTransformStage('stream-digest', stream, () => stream.value!, opts);
  return {
    ...stage,
    digest() {
      if (stream.value === undefined) {
        throw new UsageError('stream-digest: the digest is asked for before the stream ended');
      }
      return stream.value;
    },
  };
}

/** Options of {@link digestCheck}. */
export interface DigestCheckOptions extends StageOptions {
  /** The stored object, as errors name it: `s3://bucket/key`. */
  where: string;
  /** What the object's metadata recorded (a promise: e.g. the download's HEAD). */
  expected: RecordedDigest | Promise<RecordedDigest>;
  /** Trailing bytes held back until the digest matched. Default {@link END_COMMAND_BYTES}. */
  holdBack?: number;
  /** Called before the first byte when there is no recorded digest to check. */
  onUnrecorded?: (kind: 'none' | 'pending') => void;
}

/** The warning a restore gives for a diff whose upload never recorded its digest. */
export function warnDigestPending(where: string): void {
  warn(
    'DIGEST_NOT_RECORDED',
    `${where}: no whole-stream checksum was recorded (its upload was interrupted while finishing); checking command CRCs only`,
  );
}

/** What {@link digestCheck} saw in a stream that passed. */
export interface DigestCheckResult {
  /**
   * `verified`: the whole-stream SHA-256 and version matched the recorded ones;
   * `none`: no digest recorded (an older writer), checked by command CRCs only;
   * `pending`: the writer never recorded its digest (its upload was interrupted while finishing).
   */
  readonly status: 'verified' | 'none' | 'pending';
  /** SHA-256 of what was read, hex. */
  readonly sha256: string;
  /** Version in the stream header, when it is a send stream's. */
  readonly version: number | undefined;
  readonly bytes: number;
}

class DigestCheck extends Transform {
  value: DigestCheckResult | undefined;
  readonly #where: string;
  readonly #expected: Promise<RecordedDigest>;
  readonly #holdBack: number;
  readonly #onUnrecorded: ((kind: 'none' | 'pending') => void) | undefined;
  readonly #hash: Hash = createHash('sha256');
  readonly #header = new HeaderReader();
  #recorded: RecordedDigest | undefined;
  #versionChecked = false;
  #bytes = 0;
  /** Chunks not yet passed on: together they hold at least the last `holdBack` bytes seen. */
  #held: Buffer[] = [];
  #heldBytes = 0;

  constructor(
    where: string,
    expected: Promise<RecordedDigest>,
    holdBack: number,
    onUnrecorded: ((kind: 'none' | 'pending') => void) | undefined,
  ) {
    super();
    this.#where = where;
    this.#expected = expected;
    this.#holdBack = holdBack;
    this.#onUnrecorded = onUnrecorded;
  }

  override _construct(callback: (err?: Error | null) => void): void {
    this.#expected.then(
      (r) => {
        this.#recorded = r;
        if (r.kind === 'invalid') {
          callback(
            new StreamCorruptError(
              `${this.#where}: unreadable whole-stream checksum in its metadata (${r.reason}); the diff is damaged`,
              { commandIndex: -1, offset: 0 },
            ),
          );
          return;
        }
        if (r.kind === 'pending' || r.kind === 'none') {
          debug('no whole-stream checksum to check', { where: this.#where, kind: r.kind });
          this.#onUnrecorded?.(r.kind);
        }
        callback();
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(describeError(err))),
    );
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    const r = this.#recorded!;
    if (!this.#versionChecked && this.#header.feed(chunk)) {
      this.#versionChecked = true;
      const version = this.#header.version;
      if (r.kind === 'recorded' && r.version !== undefined && version !== r.version) {
        callback(
          new StreamCorruptError(
            `${this.#where}: stream version ${version ?? '(no send-stream header)'} in the header, ${r.version} recorded at upload; the diff is damaged`,
            { commandIndex: -1, offset: 0 },
          ),
        );
        return;
      }
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    while (this.#held.length > 0 && this.#heldBytes - this.#held[0]!.length >= this.#holdBack) {
      const c = this.#held.shift()!;
      this.#heldBytes -= c.length;
      this.push(c);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const r = this.#recorded!;
    const sha256 = this.#hash.digest('hex');
    const version = this.#header.version;
    if (r.kind === 'recorded') {
      if (sha256 !== r.sha256) {
        callback(
          new StreamCorruptError(
            `${this.#where}: whole-stream SHA-256 mismatch: stored ${r.sha256}, read ${sha256}; the diff is damaged`,
            { commandIndex: -1, offset: this.#bytes },
          ),
        );
        return;
      }
    }
    this.value = {
      status: r.kind === 'recorded' ? 'verified' : r.kind === 'pending' ? 'pending' : 'none',
      sha256,
      version,
      bytes: this.#bytes,
    };
    for (const c of this.#held) this.push(c);
    this.#held = [];
    this.#heldBytes = 0;
    callback();
  }
}

/**
 * The check a read of a stored diff runs right after the download: hashes every byte,
 * compares the header's version with the recorded one as soon as the header arrived,
 * and releases the stream's last `holdBack` bytes (the END command) only after the
 * input ended and the SHA-256 matched. On a mismatch the stream errors with a one-line
 * StreamCorruptError naming `where`, and the held bytes are never released, so a
 * receiver downstream never sees END (the receiving sink then kills it: only a
 * partial is left). Diffs without a recorded digest (`none`, `pending`) pass unchanged,
 * left to the per-command CRCs; `invalid` metadata fails at once.
 * Contract: on success the output is byte-for-byte the input.
 * @throws {UsageError} for invalid options.
 */
export function digestCheck(opts: DigestCheckOptions): TransformStage<DigestCheckResult> {
  const holdBack = opts.holdBack ?? END_COMMAND_BYTES;
  if (!(Number.isSafeInteger(holdBack) && holdBack >= 1)) {
    throw new UsageError(`digestCheck: holdBack must be a positive integer, got ${holdBack}`);
  }
  if (typeof opts.where !== 'string' || opts.expected === undefined) {
    throw new UsageError('digestCheck: where and expected are required');
  }
  const expected = Promise.resolve(opts.expected);
  expected.catch(() => undefined);
  const stream = new DigestCheck(opts.where, expected, holdBack, opts.onUnrecorded);
  return resultTransformStage('digest-check', stream, () => stream.value!, opts);
}
