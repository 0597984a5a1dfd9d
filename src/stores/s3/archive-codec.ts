/**
 * Client-side archive encoding of the diffs an S3 store writes and reads: zstd
 * compression, then age encryption, each an optional transform stage. Which ones a
 * stored object went through is its key suffix (`s3-layout.ts`: `.zst`, `.age`,
 * `.zst.age`), so a bucket may mix plain and encoded diffs and every reader knows how
 * to undo each. Writing: compress → encrypt → (digest, chunker, upload): the stored
 * SHA-256 is that of the stored, encrypted bytes. Reading: (download, digest-check)
 * → decrypt → decompress.
 *
 * The stages get no abort signal of their own: they always run in a pipeline with
 * the download or upload, which destroys them on abort (and one more abort listener
 * per stage would pass Node's 10-listener warning on the run's signal).
 *
 * Key material is read from files when first needed (a listing needs none):
 * recipients files hold one `age1…` per line (blank lines and `#` comments
 * ignored); identity files are age identity files (`AGE-SECRET-KEY-1…` lines, as
 * `age-keygen` writes them); a passphrase file's first line is the passphrase.
 */
import { readFileSync } from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { UsageError, describeError } from '../../errors.js';
import { ageDecrypt } from '../../stages/age-decrypt.js';
import { ageEncrypt } from '../../stages/age-encrypt.js';
import { zstdCompress, zstdDecompress } from '../../stages/zstd.js';
import { sourceStage } from '../../streams/stage.js';
import type { SourceStage, TransformStage } from '../../streams/stage.js';
import type { DiffSuffix } from './s3-layout.js';

/** How an S3 store encodes the diffs it writes and decodes the ones it reads. */
export interface ArchiveOptions {
  /** zstd level for uploads (`--compress zstd[:LEVEL]`); undefined: no compression. */
  compressLevel?: number;
  /** age X25519 recipients (`--encrypt-to`, repeatable). */
  recipients?: readonly string[];
  /** Files of recipients, one per line (`--encrypt-to-file`). */
  recipientFiles?: readonly string[];
  /**
   * File whose first line is a passphrase (`--passphrase-file`, or the environment's
   * `BUTTERSINK_PASSPHRASE_FILE`): uploads are encrypted to it when no recipient is
   * given, and it is tried on encrypted downloads.
   */
  passphraseFile?: string;
  /** age identity files (`--age-identity`), to decrypt encrypted diffs. */
  identityFiles?: readonly string[];
  /** scrypt work factor for a passphrase; tests lower it. Default age's (18). */
  scryptLogN?: number;
}

/** Lines of `text` without blank lines and `#` comments, trimmed. */
function keyLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function readKeyFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the ${what} file ${file}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/** The recipients of a recipients file's text: one `age1…` a line; `#` comments. */
export function parseRecipients(text: string): string[] {
  return keyLines(text);
}

/** The identities of an age identity file's text: its `AGE-SECRET-KEY-1…` lines. */
export function parseIdentities(text: string): string[] {
  return keyLines(text).filter((l) => l.startsWith('AGE-SECRET-KEY-'));
}

/** Every recipient `opts` names, from options and files. */
export function recipientsOf(opts: ArchiveOptions): string[] {
  const fromFiles = (opts.recipientFiles ?? []).flatMap((f) => {
    const list = parseRecipients(readKeyFile(f, 'recipients'));
    if (list.length === 0) throw new UsageError(`no age recipient in ${f}`);
    return list;
  });
  return [...(opts.recipients ?? []), ...fromFiles];
}

function passphraseOf(opts: ArchiveOptions): string | undefined {
  if (opts.passphraseFile === undefined) return undefined;
  const first = readKeyFile(opts.passphraseFile, 'passphrase').split(/\r?\n/)[0] ?? '';
  if (first === '') throw new UsageError(`the passphrase file ${opts.passphraseFile} is empty`);
  return first;
}

/** True when `opts` encrypts uploads (recipients or a passphrase). */
function encrypts(opts: ArchiveOptions): boolean {
  return (
    (opts.recipients ?? []).length > 0 ||
    (opts.recipientFiles ?? []).length > 0 ||
    opts.passphraseFile !== undefined
  );
}

/** The key suffix of the diffs a store with `opts` writes. */
export function writeSuffix(opts: ArchiveOptions): DiffSuffix {
  const zst = opts.compressLevel !== undefined ? '.zst' : '';
  const age = encrypts(opts) ? '.age' : '';
  return `${zst}${age}` as DiffSuffix;
}

/**
 * The stages that encode a plain send stream as `opts` asks: zstd, then age.
 * Reads key files; throws UsageError on a bad recipient or unreadable file.
 */
export function encodeStages(opts: ArchiveOptions): TransformStage<void>[] {
  const stages: TransformStage<void>[] = [];
  if (opts.compressLevel !== undefined) {
    stages.push(zstdCompress({ level: opts.compressLevel }));
  }
  if (encrypts(opts)) {
    const recipients = recipientsOf(opts);
    const passphrase = recipients.length === 0 ? passphraseOf(opts) : undefined;
    if (recipients.length > 0 && opts.passphraseFile !== undefined) {
      throw new UsageError('encrypt to recipients (--encrypt-to) or to a passphrase, not both');
    }
    stages.push(
      ageEncrypt({
        recipients,
        ...(passphrase !== undefined ? { passphrase } : {}),
        ...(opts.scryptLogN !== undefined ? { scryptLogN: opts.scryptLogN } : {}),
      }),
    );
  }
  return stages;
}

/** True when `opts` holds something to decrypt with (identity files or a passphrase). */
export function canDecrypt(opts: ArchiveOptions): boolean {
  return (opts.identityFiles ?? []).length > 0 || opts.passphraseFile !== undefined;
}

/**
 * The stages that turn a stored object with key suffix `suffix` back into a send
 * stream: age decrypt (naming `where` in its errors), then zstd decompress. Reads
 * key files; throws UsageError when the object is encrypted and nothing to decrypt
 * it with was given.
 */
export function decodeStages(
  suffix: DiffSuffix,
  opts: ArchiveOptions,
  where: string,
): TransformStage<void>[] {
  const stages: TransformStage<void>[] = [];
  if (suffix.endsWith('.age')) {
    const identities = (opts.identityFiles ?? []).flatMap((f) => {
      const ids = parseIdentities(readKeyFile(f, 'age identity'));
      if (ids.length === 0) throw new UsageError(`no AGE-SECRET-KEY-1… identity in ${f}`);
      return ids;
    });
    const passphrase = passphraseOf(opts);
    stages.push(
      ageDecrypt({
        where,
        identities,
        ...(passphrase !== undefined ? { passphrases: [passphrase] } : {}),
      }),
    );
  }
  if (suffix.startsWith('.zst')) stages.push(zstdDecompress());
  return stages;
}

/**
 * The plain send stream of a stored object: `download()` followed by the
 * {@link decodeStages} of `suffix`, as one source stage. Its stream is the last
 * stage's output; errors and teardown travel both ways (destroying the output
 * destroys the download); its result is the download's, once every stage settled.
 * Missing key material fails the stream (before anything is downloaded), so the
 * pipeline it is in tears down its other stages as for any failure.
 */
export function decodedSource<R>(
  download: () => SourceStage<R>,
  suffix: DiffSuffix,
  opts: ArchiveOptions,
  where: string,
): SourceStage<R> {
  let transforms: TransformStage<void>[];
  try {
    transforms = decodeStages(suffix, opts, where);
  } catch (err) {
    const failed = new Readable({ read() {} });
    process.nextTick(() => failed.destroy(err as Error));
    return sourceStage('s3-download', failed, Promise.reject(err as Error));
  }
  const source = download();
  if (transforms.length === 0) return source;
  const streams = [source.stream, ...transforms.map((t) => t.stream)] as const;
  pipeline(streams as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream], () => undefined);
  const result = Promise.all([source.result, ...transforms.map((t) => t.result)]).then(
    ([r]) => r as R,
  );
  return sourceStage(source.name, transforms[transforms.length - 1]!.stream, result);
}
