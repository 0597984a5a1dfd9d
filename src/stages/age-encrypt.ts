/**
 * Transform stage: encrypts the bytes in the age format (age-encryption.org/v1) to
 * X25519 recipients (`age1…`) or, exclusively, to a passphrase (scrypt), with the
 * `age-encryption` package's streaming encrypter: a random file key per stream,
 * ChaCha20-Poly1305 in 64 KiB chunks, the last one flagged, so truncation is detected.
 * `age -d -i KEYFILE` (Debian `age`) decrypts the output.
 *
 * Buffering and backpressure: see `streams/web-transform.ts`; one 64 KiB plaintext
 * chunk is held while it fills. The header (and, with a passphrase, the scrypt
 * derivation: ~256 MiB for a moment at age's work factor 18) comes before the first byte.
 */
import { Encrypter } from 'age-encryption';
import { UsageError } from '../errors.js';
import { webTransformStage } from '../streams/web-transform.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** Options of {@link ageEncrypt}: `recipients` or `passphrase`, not both. */
export interface AgeEncryptOptions extends StageOptions {
  /** X25519 recipients, `age1…` (bech32). */
  recipients?: readonly string[];
  /** Encrypt to this passphrase instead (scrypt recipient). */
  passphrase?: string;
  /** scrypt work factor (log2 N) for a passphrase. Default 18 (age's). For tests only. */
  scryptLogN?: number;
}

/**
 * Builds an age Encrypter for `opts`. Throws UsageError naming a malformed
 * recipient, for no recipient at all, or for recipients and a passphrase together.
 */
export function ageEncrypter(opts: AgeEncryptOptions): Encrypter {
  const recipients = opts.recipients ?? [];
  if (opts.passphrase !== undefined && recipients.length > 0) {
    throw new UsageError('age encrypts to recipients or to a passphrase, not to both');
  }
  const e = new Encrypter();
  if (opts.passphrase !== undefined) {
    if (opts.passphrase === '') throw new UsageError('the age passphrase is empty');
    e.setPassphrase(opts.passphrase);
    if (opts.scryptLogN !== undefined) e.setScryptWorkFactor(opts.scryptLogN);
    return e;
  }
  if (recipients.length === 0) throw new UsageError('age encryption needs a recipient');
  for (const r of recipients) {
    if (!/^age1[0-9a-z]{58}$/.test(r)) {
      throw new UsageError(`not an age X25519 recipient (age1… 62 characters): ${r}`);
    }
    try {
      e.addRecipient(r);
    } catch (err) {
      throw new UsageError(`not an age X25519 recipient: ${r}`, { cause: err });
    }
  }
  return e;
}

/** Encrypts the stream to `opts.recipients` (or `opts.passphrase`). Throws UsageError as {@link ageEncrypter}. */
export function ageEncrypt(opts: AgeEncryptOptions): TransformStage<void> {
  const e = ageEncrypter(opts);
  return webTransformStage('age-encrypt', (input) => e.encrypt(input), opts);
}
