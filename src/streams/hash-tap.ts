/**
 * The hash tap: digests the bytes that pass (node:crypto for SHA/MD5 throughput,
 * hash-wasm for CRC-32C) and hands each chunk on unchanged.
 *
 * Buffering/backpressure: a pass-through Transform; the hash is updated in place on the
 * same Buffer that goes downstream (no copy). At most its highWaterMark buffered on each
 * side. The CRC-32C hasher is created asynchronously (WebAssembly) before the first chunk.
 */
import { createHash, getHashes, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { createCRC32, type IHasher } from 'hash-wasm';
import { UsageError } from '../errors.js';
import type { StageOptions, TransformStage } from './stage.js';
import { checkHighWaterMark, resultTransformStage } from './make-stage.js';

/** CRC-32C (Castagnoli) polynomial, reflected. */
const CRC32C_POLYNOMIAL = 0x82f63b78;

/**
 * A node:crypto algorithm name (`sha256`, `md5`, `sha1`, `sha512`, …: whatever
 * `crypto.getHashes()` lists) or `crc32c` (standard CRC-32C, as in S3's checksums).
 */
export type HashAlgorithm = 'sha256' | 'sha1' | 'sha512' | 'md5' | 'crc32c' | (string & {});

/** Options of {@link hashTap}. */
export interface HashTapOptions extends StageOptions {
  /** Digest algorithm. */
  algorithm: HashAlgorithm;
  /** Encoding of the result. Default `hex`. */
  encoding?: 'hex' | 'base64';
  /** Stage name. Default `hash-<algorithm>`. */
  name?: string;
  /** Bytes buffered on each side before backpressure. Default: Node's. */
  highWaterMark?: number;
}

class HashTransform extends Transform {
  digest: string | undefined;
  readonly #algorithm: string;
  readonly #encoding: 'hex' | 'base64';
  #hash: Hash | undefined;
  #wasm: IHasher | undefined;

  constructor(algorithm: string, encoding: 'hex' | 'base64', highWaterMark: number | undefined) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
    this.#algorithm = algorithm;
    this.#encoding = encoding;
    if (algorithm !== 'crc32c') this.#hash = createHash(algorithm);
  }

  override _construct(callback: (err?: Error | null) => void): void {
    if (this.#algorithm !== 'crc32c') {
      callback();
      return;
    }
    createCRC32(CRC32C_POLYNOMIAL).then(
      (h) => {
        h.init();
        this.#wasm = h;
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#hash) this.#hash.update(chunk);
    else this.#wasm?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#hash) this.digest = this.#hash.digest(this.#encoding);
    else if (this.#wasm) {
      this.digest = Buffer.from(this.#wasm.digest('binary')).toString(this.#encoding);
    }
    callback();
  }
}

/**
 * A tap whose result is the digest of every byte that went through it, in `encoding`.
 * Throws a UsageError for an algorithm neither node:crypto nor this module knows.
 */
export function hashTap(opts: HashTapOptions): TransformStage<string> {
  const { algorithm } = opts;
  const encoding = opts.encoding ?? 'hex';
  const name = opts.name ?? `hash-${algorithm}`;
  if (algorithm !== 'crc32c' && !getHashes().includes(algorithm)) {
    throw new UsageError(`${name}: unknown hash algorithm '${algorithm}'`);
  }
  if (encoding !== 'hex' && encoding !== 'base64') {
    throw new UsageError(`${name}: encoding must be 'hex' or 'base64', got '${String(encoding)}'`);
  }
  checkHighWaterMark(name, opts.highWaterMark);
  const stream = new HashTransform(algorithm, encoding, opts.highWaterMark);
  return resultTransformStage(name, stream, () => stream.digest as string, opts);
}
