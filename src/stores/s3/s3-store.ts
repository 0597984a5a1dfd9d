/**
 * The S3 store: send streams ("diffs") kept as objects in a bucket, laid out as the
 * original buttersink did (see `s3-layout.ts` and formats.md), readable by both.
 * It offers exactly the diffs it holds, with their real sizes.
 *
 * Receiving a diff: chunker → skip-uploaded → s3-upload. The chunker computes each
 * part's MD5 (Content-MD5) and SHA-256 (the request signature's payload hash) as
 * the part fills, and a part budget shared by the chunker and the upload keeps at
 * most jobs + 1 parts in memory (`jobs` being sent, one being filled). The multipart upload
 * completes only after the whole stream arrived and verified; a failed or killed
 * run leaves it open, and the next run of the same transfer resumes it (parts
 * whose content matches are skipped). After completion the diff's size is
 * appended to the snapshot's `.bs` object. Sending a diff: s3-download (ranged,
 * parallel, retried). Deleting a diff moves it under `trash/` (copy, then delete).
 *
 * Integrity (see `stages/digest-check.ts`): every diff written records the SHA-256 of
 * the whole stream and its stream version as user metadata (`buttersink-sha256`,
 * `buttersink-stream-version`), computed by a stream-digest tap in front of the
 * chunker, so a resumed upload hashes the parts it skips too. Every read of a diff
 * (`send`, `download`, the scrub) runs digest-check right after the download: a
 * mismatch fails before the stream's END is released. Server-side copies keep the
 * metadata. Diffs without it (the original buttersink's) are read as before.
 */
import { pipeline } from 'node:stream';
import { s3Sdk } from '../../s3/aws-sdk.js';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  CredentialsError,
  LocationError,
  StoreError,
  UsageError,
  describeError,
} from '../../errors.js';
import { debug, warn } from '../../log.js';
import { edgeKey } from '../../planner/plan-input.js';
import type { DiffOffer, StoreView } from '../../planner/plan-input.js';
import type { Volume } from '../../planner/volume.js';
import { digestCheck, recordedDigest, streamDigest } from '../../stages/digest-check.js';
import type { DigestCheckResult } from '../../stages/digest-check.js';
import {
  DIGEST_PENDING,
  META_SHA256,
  digestMetadata,
  warnDigestPending,
} from '../../stages/digest-check.js';
import { s3Download } from '../../stages/s3-download.js';
import { S3_MAX_PARTS, S3_MIN_PART_SIZE, s3Upload } from '../../stages/s3-upload.js';
import type { S3UploadResult } from '../../stages/s3-upload.js';
import { skipUploaded } from '../../stages/skip-uploaded.js';
import { chunker } from '../../streams/chunker.js';
import { PartBudget } from '../../streams/part-budget.js';
import { mapLimit } from '../../streams/highland-adapter.js';
import { sourceStage } from '../../streams/stage.js';
import type { SourceStage } from '../../streams/stage.js';
import { formatSizeInfo, parseSizeInfo } from '../size-info.js';
import type {
  Partial,
  ReceiveOptions,
  ReceiveStages,
  Store,
  StoreOpOptions,
  StoreRole,
} from '../store.js';
import type { S3Location } from '../uri.js';
import { createS3Client } from '../../s3/s3-client.js';
import type { S3ClientOptions } from '../../s3/s3-client.js';
import {
  abortUpload,
  copyObject as copyServerSide,
  findResumableUpload,
  listOpenUploads,
} from '../../s3/multipart.js';
import type { ResumableUpload } from '../../s3/multipart.js';
import {
  TRASH_PREFIX,
  diffKey,
  lockKey,
  parseKey,
  prefixDir,
  sizeInfoKey,
  trashKey,
} from './s3-layout.js';
import { acquireS3Lock } from './s3-lock.js';
import type { DiffSuffix } from './s3-layout.js';
import { canDecrypt, decodedSource, encodeStages, writeSuffix } from './archive-codec.js';
import type { ArchiveOptions } from './archive-codec.js';
import type { S3LockOptions } from './s3-lock.js';
import type { LockOptions, StoreLock } from '../lock.js';
import { unwrapStore } from '../wrappers/unwrap.js';

const MiB = 1024 * 1024;

/**
 * Default part size: 16 MiB. Small enough that the first part leaves after a
 * moment and the last one is not a long tail, large enough that the per-request
 * cost stays small; (4 + 1) × 16 MiB in memory.
 */
export const DEFAULT_S3_PART_SIZE = 16 * MiB;
/** Default parts uploaded / ranges downloaded at once. */
export const DEFAULT_S3_JOBS = 4;

/** Options of {@link S3Store}. */
export interface S3StoreOptions extends S3ClientOptions {
  /** A client to use instead of creating one (not destroyed by `close()`). */
  client?: S3Client;
  /** Server-side encryption (SSE-S3, AES256) of uploads. Default true. */
  encrypt?: boolean;
  /**
   * Bytes per multipart part (of the first parts: the size grows for very long streams
   * so 10,000 parts hold 5 TiB). Default {@link DEFAULT_S3_PART_SIZE}; at least 5 MiB.
   */
  partSize?: number;
  /**
   * Parts uploaded, or ranges downloaded, at once. Default {@link DEFAULT_S3_JOBS}.
   * An upload holds at most (jobs + 1) parts, a download about (jobs + 1) ranges.
   */
  jobs?: number;
  /** Bytes per ranged GET when downloading. Default: the part size. */
  rangeSize?: number;
  /**
   * Largest object copied server-side with one CopyObject; larger ones use a multipart
   * copy (UploadPartCopy). Default 5 GiB, S3's limit; lower it for services with a lower one.
   */
  maxSingleCopy?: number;
  /** Client-side compression and encryption of diffs (see `archive-codec.ts`). Default none. */
  archive?: ArchiveOptions;
}

/** A diff as stored in the bucket. */
export interface StoredDiff {
  readonly key: string;
  /** Snapshot path relative to the store prefix. */
  readonly path: string;
  readonly to: string;
  readonly from: string | null;
  /** Object size, bytes. */
  readonly size: number;
  readonly etag?: string;
  /** Encoding of the stored bytes, from the key (`.zst`, `.age`, `.zst.age`); absent: plain. */
  readonly suffix?: DiffSuffix;
}

/** A partial transfer in S3: an open multipart upload. */
export interface S3Partial extends Partial {
  readonly key: string;
  readonly uploadId: string;
}

interface Listing {
  diffs: StoredDiff[];
  /** Sizes recorded in `.bs` objects, by edge key. */
  info: Map<string, number>;
}

/** Diffs stored under `s3://bucket/prefix/`. */
export class S3Store implements Store {
  readonly kind = 's3' as const;
  readonly location: S3Location;
  readonly #opts: S3StoreOptions;
  readonly #partSize: number;
  readonly #jobs: number;
  #client: S3Client | undefined;
  /** Stored diffs of the last listing, by edge key. */
  #byEdge = new Map<string, StoredDiff>();

  /** Validates options (UsageError); makes no request. */
  constructor(location: S3Location, opts: S3StoreOptions = {}) {
    this.location = location;
    this.#opts = opts;
    this.#partSize = opts.partSize ?? DEFAULT_S3_PART_SIZE;
    if (!(Number.isSafeInteger(this.#partSize) && this.#partSize >= S3_MIN_PART_SIZE)) {
      throw new UsageError(`part size must be at least 5 MiB, got ${this.#partSize} bytes`);
    }
    this.#jobs = opts.jobs ?? DEFAULT_S3_JOBS;
    if (!(Number.isSafeInteger(this.#jobs) && this.#jobs >= 1)) {
      throw new UsageError(`jobs must be a positive integer, got ${this.#jobs}`);
    }
    this.#client = opts.client;
  }

  /** The S3 client (created on first use). */
  get client(): S3Client {
    this.#client ??= createS3Client(this.#opts);
    return this.#client;
  }

  get #bucket(): string {
    return this.location.bucket;
  }

  /** `s3://bucket/key`, for messages. */
  uriOf(key: string): string {
    return `s3://${this.#bucket}/${key}`;
  }

  describeDiff(to: Volume, from: Volume | null): string {
    return this.uriOf(diffKey(this.location.prefix, to.path, to.uuid, from?.uuid ?? null));
  }

  #wrap(what: string, err: unknown): never {
    if (err instanceof StoreError || err instanceof UsageError) throw err;
    const name = (err as { name?: unknown }).name;
    if (name === 'NoSuchBucket') {
      throw new StoreError(`s3://${this.#bucket}/: no such bucket`, { cause: err });
    }
    if (name === 'CredentialsProviderError') {
      throw new CredentialsError(`${what}: no AWS credentials found`, { cause: err });
    }
    throw new StoreError(`${what}: ${describeError(err)}`, { cause: err });
  }

  async #list(opts: StoreOpOptions): Promise<Listing> {
    const dir = prefixDir(this.location.prefix);
    const diffs: StoredDiff[] = [];
    const infoKeys: string[] = [];
    const unknown: string[] = [];
    const sig = opts.signal ? { abortSignal: opts.signal } : {};
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new (s3Sdk().ListObjectsV2Command)({
            Bucket: this.#bucket,
            Prefix: dir,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
          }),
          sig,
        );
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined) continue;
          const k = parseKey(this.location.prefix, o.Key);
          if (k.kind === 'diff') {
            diffs.push({
              key: o.Key,
              path: k.path,
              to: k.to,
              from: k.from,
              size: o.Size ?? 0,
              ...(o.ETag !== undefined ? { etag: o.ETag } : {}),
              ...(k.suffix !== '' ? { suffix: k.suffix } : {}),
            });
          } else if (k.kind === 'info') infoKeys.push(o.Key);
          else if (k.kind === 'unknown') unknown.push(o.Key);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (err) {
      this.#wrap(`listing ${this.uriOf(dir)}`, err);
    }
    for (const key of unknown.slice(0, 20)) {
      warn('S3_UNKNOWN_KEY', `ignoring ${this.uriOf(key)}: not a diff or .bs size info`);
    }
    if (unknown.length > 20) {
      warn('S3_UNKNOWN_KEY', `ignoring ${unknown.length - 20} more unrecognised keys`);
    }
    const info = new Map<string, number>();
    const texts = await mapLimit(
      infoKeys,
      8,
      (key) => this.#getText(key, opts.signal).catch(() => undefined),
      opts.signal ? { signal: opts.signal } : {},
    );
    texts.forEach((text, i) => {
      if (text === undefined) return;
      const { entries, bad } = parseSizeInfo(text);
      if (bad.length > 0) {
        warn(
          'BAD_SIZE_INFO',
          `${this.uriOf(infoKeys[i]!)}: ${bad.length} unreadable line(s) ignored`,
        );
      }
      for (const e of entries) info.set(edgeKey(e.to, e.from), e.size);
    });
    diffs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { diffs, info };
  }

  async #getText(key: string, signal?: AbortSignal): Promise<string | undefined> {
    try {
      const res = await this.client.send(
        new (s3Sdk().GetObjectCommand)({ Bucket: this.#bucket, Key: key }),
        signal ? { abortSignal: signal } : {},
      );
      return (await res.Body?.transformToString('utf8')) ?? '';
    } catch (err) {
      const name = (err as { name?: unknown }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw err;
    }
  }

  /**
   * Every diff stored under the prefix (trash and unknown keys left out; unknown keys
   * warned about), sorted by key. Refreshes what `send`/`deleteDiff` look up.
   */
  async storedDiffs(opts: StoreOpOptions = {}): Promise<StoredDiff[]> {
    const { diffs, info } = await this.#list(opts);
    this.#byEdge = new Map();
    for (const d of diffs) {
      const ek = edgeKey(d.to, d.from);
      const recorded = info.get(ek);
      if (recorded !== undefined && recorded !== d.size) {
        warn(
          'S3_SIZE_MISMATCH',
          `${this.uriOf(d.key)} has ${d.size} bytes but its .bs records ${recorded}; run a scrub`,
        );
      }
      if (!this.#byEdge.has(ek)) this.#byEdge.set(ek, d);
    }
    return diffs;
  }

  /**
   * Lists the diffs for the planner. A source prefix holding none is refused
   * with a {@link LocationError} (`EMPTY_SOURCE`) saying which prefixes exist.
   */
  async view(role: StoreRole, opts: StoreOpOptions = {}): Promise<StoreView> {
    const diffs = await this.storedDiffs(opts);
    if (role === 'source' && diffs.length === 0) {
      throw new LocationError('EMPTY_SOURCE', await this.describeEmpty(opts));
    }
    const volumes = new Map<string, Volume>();
    for (const d of [...diffs].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      if (!volumes.has(d.to)) volumes.set(d.to, { uuid: d.to, path: d.path });
    }
    const offers: DiffOffer[] = [...this.#byEdge.values()].map((d) => ({
      to: d.to,
      from: d.from,
      size: d.size,
      estimated: false,
      store: role === 'source' ? 'source' : 'dest',
      atDest: role === 'dest',
    }));
    return { kind: 's3', volumes: [...volumes.values()], diffs: offers };
  }

  /**
   * One line for a prefix that holds no diffs, naming the prefixes beside it
   * (one level up; trash left out): `s3://bkt/backups/: no diffs here; prefixes
   * in this bucket: b2/, backups2/`. Makes one ListObjectsV2 request.
   */
  async describeEmpty(opts: StoreOpOptions = {}): Promise<string> {
    const dir = prefixDir(this.location.prefix);
    const parent = dir.slice(0, dir.lastIndexOf('/', dir.length - 2) + 1);
    let names: string[] = [];
    try {
      const page = await this.client.send(
        new (s3Sdk().ListObjectsV2Command)({
          Bucket: this.#bucket,
          Prefix: parent,
          Delimiter: '/',
        }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
      names = (page.CommonPrefixes ?? [])
        .map((p) => p.Prefix ?? '')
        .filter(
          (p) => p !== '' && p !== dir && p !== TRASH_PREFIX && p !== `${dir}${TRASH_PREFIX}`,
        );
    } catch (err) {
      this.#wrap(`listing ${this.uriOf(parent)}`, err);
    }
    const where = parent === '' ? 'in this bucket' : `in ${this.uriOf(parent)}`;
    const shown = names.slice(0, 10).join(', ') + (names.length > 10 ? ', …' : '');
    return `${this.uriOf(dir)}: no diffs here; ${names.length > 0 ? `prefixes ${where}: ${shown}` : `no other prefixes ${where}`}`;
  }

  #stored(to: Volume, from: Volume | null): StoredDiff | undefined {
    return this.#byEdge.get(edgeKey(to.uuid, from?.uuid ?? null));
  }

  async measure(to: Volume, from: Volume | null, opts: StoreOpOptions = {}): Promise<number> {
    const known = this.#stored(to, from);
    if (known) return known.size;
    const key = diffKey(this.location.prefix, to.path, to.uuid, from?.uuid ?? null);
    try {
      const head = await this.client.send(
        new (s3Sdk().HeadObjectCommand)({ Bucket: this.#bucket, Key: key }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
      return head.ContentLength ?? 0;
    } catch (err) {
      this.#wrap(`${this.uriOf(key)}: an S3 store cannot measure a diff it does not hold`, err);
    }
  }

  /**
   * The bytes of one stored diff: s3-download (see {@link s3Download}) followed by
   * digest-check against the whole-stream SHA-256 and stream version its metadata
   * records (read with a HEAD before the first byte). Its stream ends only after the
   * digest matched; on a mismatch it errors naming the key, before the stream's last
   * bytes (END) are handed on. Diffs without a recorded digest pass unchecked
   * (`status` `none`). Result: the check's, once the stream was read to its end.
   * `onUnrecorded` is called before the first byte when there is no digest to check.
   */
  download(
    diff: { readonly key: string; readonly size?: number; readonly etag?: string },
    opts: StoreOpOptions & { onUnrecorded?: (kind: 'none' | 'pending') => void } = {},
  ): SourceStage<DigestCheckResult> {
    const sig = opts.signal ? { signal: opts.signal } : {};
    const dl = s3Download({
      client: this.client,
      bucket: this.#bucket,
      key: diff.key,
      readMetadata: true,
      ...(diff.size !== undefined ? { size: diff.size } : {}),
      ...(diff.etag !== undefined ? { etag: diff.etag } : {}),
      jobs: this.#jobs,
      // Ranges of the part size: the parts' boundaries, and few requests per object.
      rangeSize: this.#opts.rangeSize ?? this.#partSize,
      ...sig,
    });
    const check = digestCheck({
      where: this.uriOf(diff.key),
      expected: dl.head.then((h) => recordedDigest(h.metadata)),
      ...(opts.onUnrecorded !== undefined ? { onUnrecorded: opts.onUnrecorded } : {}),
      ...sig,
    });
    // Errors and teardown travel both ways: destroying the output destroys the download.
    pipeline(dl.stream, check.stream, () => undefined);
    const result = Promise.all([dl.result, check.result]).then(([, c]) => c);
    return sourceStage('s3-download', check.stream, result);
  }

  /**
   * True when this store can decode `diff`'s bytes back into a send stream: it is
   * not encrypted, or an identity or passphrase was given.
   */
  canDecode(diff: { readonly suffix?: DiffSuffix }): boolean {
    return !(diff.suffix ?? '').endsWith('.age') || canDecrypt(this.#opts.archive ?? {});
  }

  /**
   * {@link download} followed by the stages that undo the diff's archive encoding
   * (age decrypt, zstd decompress; see `archive-codec.ts`): the plain send stream.
   */
  downloadDecoded(
    diff: Parameters<S3Store['download']>[0] & { readonly suffix?: DiffSuffix },
    opts: Parameters<S3Store['download']>[1] = {},
  ): SourceStage<DigestCheckResult> {
    const archive = this.#opts.archive ?? {};
    const where = this.uriOf(diff.key);
    return decodedSource(() => this.download(diff, opts), diff.suffix ?? '', archive, where);
  }

  send(to: Volume, from: Volume | null, opts: StoreOpOptions = {}): SourceStage<unknown> {
    const stored = this.#stored(to, from) ?? {
      key: diffKey(this.location.prefix, to.path, to.uuid, from?.uuid ?? null),
    };
    return this.downloadDecoded(stored, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onUnrecorded: (kind) => {
        if (kind === 'pending') warnDigestPending(this.uriOf(stored.key));
      },
    });
  }

  /**
   * chunker → skip-uploaded → s3-upload (see the module header). Refuses (StoreError,
   * as the btrfs store does) a snapshot path that already holds a diff of another
   * snapshot: checked when the receive starts, before any byte is uploaded.
   */
  async receive(
    to: Volume,
    from: Volume | null,
    opts: ReceiveOptions = {},
  ): Promise<ReceiveStages> {
    const sig = opts.signal ? { signal: opts.signal } : {};
    const suffix = writeSuffix(this.#opts.archive ?? {});
    const key = diffKey(this.location.prefix, to.path, to.uuid, from?.uuid ?? null, suffix);
    const encoders = encodeStages(this.#opts.archive ?? {});
    await this.#refuseTakenPath(to, opts);
    const { open, partSize } = await this.#resumable(key, sig);
    opts.signal?.throwIfAborted();
    const skipped = { parts: 0, bytes: 0 };
    let stored = 0;
    // jobs parts being sent and one being filled: the chunker waits for a unit before a part.
    const budget = new PartBudget(this.#jobs + 1);
    // Hashes every byte stored, the parts a resume skips included (they are still read).
    const digest = streamDigest(sig);
    const sink = s3Upload({
      client: this.client,
      bucket: this.#bucket,
      key,
      ...(open ? { uploadId: open.uploadId } : {}),
      encrypt: this.#opts.encrypt ?? true,
      jobs: this.#jobs,
      budget,
      ...sig,
      metadata: { [META_SHA256]: DIGEST_PENDING },
      finalMetadata: ({ bytes }) => {
        const d = digest.digest();
        if (d.bytes !== bytes) {
          throw new StoreError(
            `${this.uriOf(key)}: hashed ${d.bytes} bytes but uploading ${bytes}; not completing the upload`,
          );
        }
        return digestMetadata(d);
      },
      ...(this.#opts.maxSingleCopy !== undefined
        ? { maxSingleCopy: this.#opts.maxSingleCopy }
        : {}),
      onPart: (p) => {
        opts.onStored?.((stored += p.bytes));
        if (!p.skipped) return;
        skipped.parts += 1;
        skipped.bytes += p.bytes;
      },
      onComplete: (r) => this.#received({ to, from, open, skipped, suffix }, r, opts.signal),
    });
    return {
      transforms: [
        ...encoders,
        digest,
        chunker({ partSize, maxParts: S3_MAX_PARTS, hashes: ['md5', 'sha256'], budget, ...sig }),
        skipUploaded({ uploaded: open?.parts ?? new Map(), ...sig }),
      ],
      sink,
    };
  }

  /**
   * Refuses to receive `to` where another snapshot's diff is stored: a diff
   * directly under `<prefix>/<to.path>/` whose snapshot UUID is not `to`'s.
   */
  async #refuseTakenPath(to: Volume, opts: StoreOpOptions): Promise<void> {
    const dir = `${prefixDir(this.location.prefix)}${to.path}/`;
    let keys: string[] = [];
    try {
      const page = await this.client.send(
        new (s3Sdk().ListObjectsV2Command)({ Bucket: this.#bucket, Prefix: dir, Delimiter: '/' }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
      keys = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key]));
    } catch (err) {
      this.#wrap(`listing ${this.uriOf(dir)}`, err);
    }
    for (const k of keys) {
      const parsed = parseKey(this.location.prefix, k);
      if (parsed.kind === 'diff' && parsed.path === to.path && parsed.to !== to.uuid) {
        throw new StoreError(
          `${this.uriOf(dir)} already holds snapshot ${parsed.to}, not ${to.uuid} (${this.uriOf(k)}); move it away first`,
        );
      }
    }
  }

  /** The open upload of `key` to resume, if any, and the part size that matches it. */
  async #resumable(
    key: string,
    sig: { signal?: AbortSignal },
  ): Promise<{ open: ResumableUpload | undefined; partSize: number }> {
    let open: ResumableUpload | undefined;
    try {
      open = await findResumableUpload(this.client, this.#bucket, key, sig);
    } catch (err) {
      this.#wrap(`${this.uriOf(key)}: looking for an upload to resume`, err);
    }
    if (!open) return { open, partSize: this.#partSize };
    debug('found an open upload to resume', {
      key,
      uploadId: open.uploadId,
      parts: open.parts.size,
    });
    const part1 = open.parts.get(1);
    // Part 2 exists, so part 1 had the base part size of that run: chunk alike to match.
    if (part1 && open.parts.has(2) && part1.size >= S3_MIN_PART_SIZE) {
      if (part1.size !== this.#partSize) {
        debug('resuming with the part size of the open upload', { key, partSize: part1.size });
      }
      return { open, partSize: part1.size };
    }
    return { open, partSize: this.#partSize };
  }

  /**
   * After an upload completed: says what a resume skipped, aborts superseded
   * uploads of the same key, records the size in the `.bs`, and remembers the diff.
   */
  async #received(
    receiving: {
      to: Volume;
      from: Volume | null;
      open: ResumableUpload | undefined;
      skipped: { parts: number; bytes: number };
      /** Key suffix of an archived (compressed/encrypted) diff; '' for plain. */
      suffix: DiffSuffix;
    },
    done: S3UploadResult,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const { to, from, open, skipped, suffix } = receiving;
    const key = done.key;
    if (open && skipped.parts > 0) {
      warn(
        'UPLOAD_RESUMED',
        `${this.uriOf(key)}: resumed an interrupted upload: ${skipped.parts} part(s), ${skipped.bytes} bytes already uploaded and verified; ${done.uploadedParts} part(s) uploaded now`,
        {
          skippedParts: skipped.parts,
          skippedBytes: skipped.bytes,
          uploadedParts: done.uploadedParts,
        },
      );
    }
    for (const other of open?.others ?? []) {
      await abortUpload(this.client, this.#bucket, other).catch((err: unknown) =>
        debug('could not abort a superseded upload', { key, error: describeError(err) }),
      );
    }
    await this.#appendSizeInfo(to, from, done.bytes, signal).catch((err: unknown) =>
      warn(
        'SIZE_INFO_WRITE',
        `cannot record the size in ${this.uriOf(sizeInfoKey(this.location.prefix, to.path))}: ${describeError(err)}`,
      ),
    );
    this.#byEdge.set(edgeKey(to.uuid, from?.uuid ?? null), {
      key,
      path: to.path,
      to: to.uuid,
      from: from?.uuid ?? null,
      size: done.bytes,
      ...(done.etag !== undefined ? { etag: done.etag } : {}),
      ...(suffix !== '' ? { suffix } : {}),
    });
  }

  async #appendSizeInfo(
    to: Volume,
    from: Volume | null,
    size: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const key = sizeInfoKey(this.location.prefix, to.path);
    const before = (await this.#getText(key, signal)) ?? '';
    const line = formatSizeInfo({ to: to.uuid, from: from?.uuid ?? null, size });
    const body = before === '' || before.endsWith('\n') ? before + line : `${before}\n${line}`;
    await this.client.send(
      new (s3Sdk().PutObjectCommand)({
        Bucket: this.#bucket,
        Key: key,
        Body: body,
        ContentType: 'text/plain',
        ...((this.#opts.encrypt ?? true) ? { ServerSideEncryption: 'AES256' as const } : {}),
      }),
      signal ? { abortSignal: signal } : {},
    );
  }

  async deleteVolume(volume: Volume): Promise<void> {
    throw new StoreError(
      `an S3 store holds diffs, not snapshots (asked to delete ${volume.path}); delete its diffs`,
    );
  }

  async deleteDiff(diff: DiffOffer, opts: StoreOpOptions = {}): Promise<void> {
    const stored = this.#byEdge.get(edgeKey(diff.to, diff.from));
    if (!stored) {
      throw new StoreError(
        `diff ${edgeKey(diff.to, diff.from)} is not stored in ${this.location.uri}`,
      );
    }
    const target = trashKey(stored.key);
    try {
      await this.copyObject(stored.key, target, stored.size, opts);
      await this.client.send(
        new (s3Sdk().DeleteObjectCommand)({ Bucket: this.#bucket, Key: stored.key }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
    } catch (err) {
      this.#wrap(`moving ${this.uriOf(stored.key)} to ${this.uriOf(target)}`, err);
    }
    this.#byEdge.delete(edgeKey(diff.to, diff.from));
    debug('moved diff to trash', { key: stored.key, trash: target });
    const moved = { key: this.uriOf(stored.key), trash: this.uriOf(target), size: stored.size };
    this.trashed.push({
      ...moved,
      removedSizeInfo: await this.#dropStaleSizeInfo(stored.path, opts),
    });
  }

  /** What {@link deleteDiff} moved to trash/, in order (S3 URIs), for the CLI to report. */
  readonly trashed: {
    key: string;
    trash: string;
    size: number;
    /** The `.bs` removed because no diff of its snapshot is left, or null. */
    removedSizeInfo: string | null;
  }[] = [];

  /** Deletes `path`'s `.bs` once no stored diff of `path` is left; returns its URI if it did. */
  async #dropStaleSizeInfo(path: string, opts: StoreOpOptions): Promise<string | null> {
    if ([...this.#byEdge.values()].some((d) => d.path === path)) return null;
    const key = sizeInfoKey(this.location.prefix, path);
    try {
      if ((await this.#getText(key, opts.signal)) === undefined) return null;
      await this.client.send(
        new (s3Sdk().DeleteObjectCommand)({ Bucket: this.#bucket, Key: key }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
    } catch (err) {
      this.#wrap(`removing the stale size record ${this.uriOf(key)}`, err);
    }
    return this.uriOf(key);
  }

  /**
   * Server-side copy of `source` (in this bucket, or `bucket/key` in another) to `target`
   * in this bucket: CopyObject up to 5 GiB (`maxSingleCopy`), a multipart UploadPartCopy
   * above. The user metadata (the whole-stream digest) is kept: MetadataDirective COPY,
   * or the source's metadata set on CreateMultipartUpload.
   */
  async copyObject(
    source: string,
    target: string,
    size: number,
    opts: StoreOpOptions & { sourceBucket?: string } = {},
  ): Promise<void> {
    await copyServerSide(this.client, {
      bucket: this.#bucket,
      key: target,
      sourceKey: source,
      ...(opts.sourceBucket !== undefined ? { sourceBucket: opts.sourceBucket } : {}),
      size,
      encrypt: this.#opts.encrypt ?? true,
      partSize: this.#partSize,
      jobs: this.#jobs,
      ...(this.#opts.maxSingleCopy !== undefined
        ? { maxSingleCopy: this.#opts.maxSingleCopy }
        : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  /**
   * S3 → S3 without moving bytes through this machine: copies the diff creating `to`
   * from `from` out of `source` (same service and credentials, any bucket/prefix)
   * server-side into this store, then records its size in the `.bs`. The source
   * must have been listed (`view`/`storedDiffs`). Returns the size copied.
   */
  async copyFrom(
    source: Store,
    to: Volume,
    from: Volume | null,
    opts: StoreOpOptions = {},
  ): Promise<number | undefined> {
    // Through any wrapper (retry, dry run): the copy is between the S3 stores under them.
    const s3 = unwrapStore(source);
    if (!(s3 instanceof S3Store)) return undefined;
    // A server-side copy keeps the source's encoding: stream (decode, encode) when it differs.
    const stored = s3.#stored(to, from);
    if (stored && (stored.suffix ?? '') !== writeSuffix(this.#opts.archive ?? {})) return undefined;
    return this.copyDiffFrom(s3, to, from, opts);
  }

  async copyDiffFrom(
    source: S3Store,
    to: Volume,
    from: Volume | null,
    opts: StoreOpOptions = {},
  ): Promise<number> {
    const stored = source.#stored(to, from);
    if (!stored) {
      throw new StoreError(
        `diff ${edgeKey(to.uuid, from?.uuid ?? null)} is not stored in ${source.location.uri}`,
      );
    }
    const key = diffKey(this.location.prefix, to.path, to.uuid, from?.uuid ?? null, stored.suffix);
    try {
      await this.copyObject(stored.key, key, stored.size, {
        ...opts,
        sourceBucket: source.location.bucket,
      });
    } catch (err) {
      this.#wrap(`copying ${source.uriOf(stored.key)} to ${this.uriOf(key)}`, err);
    }
    await this.#appendSizeInfo(to, from, stored.size, opts.signal);
    // The copy has an ETag of its own: leave it out, a download HEADs it.
    const { etag: _etag, ...rest } = stored;
    this.#byEdge.set(edgeKey(to.uuid, from?.uuid ?? null), { ...rest, key, path: to.path });
    return stored.size;
  }

  async listPartials(opts: StoreOpOptions = {}): Promise<S3Partial[]> {
    let uploads;
    try {
      uploads = await listOpenUploads(
        this.client,
        this.#bucket,
        prefixDir(this.location.prefix),
        opts,
      );
    } catch (err) {
      this.#wrap(`listing open uploads under ${this.location.uri}`, err);
    }
    return uploads.map((u) => ({
      where: `${this.uriOf(u.key)} (open multipart upload)`,
      key: u.key,
      uploadId: u.uploadId,
    }));
  }

  async deletePartials(partials: readonly Partial[], opts: StoreOpOptions = {}): Promise<void> {
    for (const p of partials) {
      const { key, uploadId } = p as Partial & { key?: unknown; uploadId?: unknown };
      if (typeof key !== 'string' || typeof uploadId !== 'string') {
        throw new StoreError(`${p.where}: not a partial upload of this S3 store`);
      }
      await abortUpload(this.client, this.#bucket, { key, uploadId }, opts);
      debug('aborted open upload', { key });
    }
  }

  /**
   * Takes the store's lock object `<prefix>/.buttersink-lock` (see `s3-lock.ts`),
   * refreshed until released; rejects with a LockedError naming the holder.
   */
  async lock(
    opts: LockOptions & Pick<S3LockOptions, 'ttlMs' | 'refreshMs'> = {},
  ): Promise<StoreLock> {
    return acquireS3Lock({
      ...opts,
      client: this.client,
      bucket: this.#bucket,
      key: lockKey(this.location.prefix),
      label: this.uriOf(prefixDir(this.location.prefix)),
      encrypt: this.#opts.encrypt ?? true,
    });
  }

  async close(): Promise<void> {
    if (this.#client && this.#client !== this.#opts.client) this.#client.destroy();
    this.#client = undefined;
  }
}
