/**
 * Transform stage: decrypts an age file (age-encryption.org/v1) with the
 * `age-encryption` package's streaming decrypter, trying every identity
 * (`AGE-SECRET-KEY-1…`) and passphrase given. Each 64 KiB chunk is authenticated
 * before its plaintext is handed on; a missing last chunk (truncation), a changed
 * byte anywhere, or a header no identity opens fails the stage with a
 * {@link DecryptError} naming `where`.
 *
 * Buffering and backpressure: see `streams/web-transform.ts`; one 64 KiB (plus tag)
 * ciphertext chunk is held while it fills.
 */
import { Decrypter } from 'age-encryption';
import { DecryptError, UsageError, describeError } from '../errors.js';
import { webTransformStage } from '../streams/web-transform.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** Options of {@link ageDecrypt}. */
export interface AgeDecryptOptions extends StageOptions {
  /** X25519 identities, `AGE-SECRET-KEY-1…`. */
  identities?: readonly string[];
  /** Passphrases to try on a passphrase-encrypted (scrypt) file. */
  passphrases?: readonly string[];
  /** What is decrypted, for messages (`s3://bucket/key`). */
  where: string;
}

/** Decrypts the stream. Throws UsageError for no identity or a malformed one. */
export function ageDecrypt(opts: AgeDecryptOptions): TransformStage<void> {
  const d = new Decrypter();
  const identities = opts.identities ?? [];
  const passphrases = opts.passphrases ?? [];
  if (identities.length + passphrases.length === 0) {
    throw new UsageError(`${opts.where} is encrypted: give its age identity (--age-identity FILE)`);
  }
  identities.forEach((id, i) => {
    if (!/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/.test(id)) {
      throw new UsageError(`age identity #${i + 1} is not an AGE-SECRET-KEY-1… X25519 key`);
    }
    d.addIdentity(id);
  });
  for (const p of passphrases) d.addPassphrase(p);
  return webTransformStage('age-decrypt', (input) => d.decrypt(input), {
    ...opts,
    mapError: (err) => decryptFailure(opts.where, err),
  });
}

/** The {@link DecryptError} for an error of the age decrypter (others pass unchanged). */
export function decryptFailure(where: string, err: unknown): Error {
  // Stream teardown (AbortedError, ERR_STREAM_*) and our own errors carry a code: keep them.
  if (!(err instanceof Error) || (err as { code?: unknown }).code !== undefined)
    return err as Error;
  const msg = describeError(err);
  if (/no identity matched/i.test(msg)) {
    return new DecryptError(
      `${where}: cannot decrypt: none of the age identities given is one of its recipients (give the matching key with --age-identity FILE)`,
      'identity',
      { cause: err },
    );
  }
  return new DecryptError(
    `${where}: age authentication failed (${msg}): the encrypted object was changed or damaged`,
    'auth',
    { cause: err },
  );
}
