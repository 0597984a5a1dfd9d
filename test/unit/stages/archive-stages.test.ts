/**
 * The archive stages on plain data: zstd compress/decompress (the Debian `zstd` as a
 * child), age encrypt/decrypt (age-encryption, streaming), and the S3 codec's key
 * files and suffixes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { DecryptError, UsageError } from '../../../src/errors.js';
import { ageDecrypt } from '../../../src/stages/age-decrypt.js';
import { ageEncrypt } from '../../../src/stages/age-encrypt.js';
import { zstdCompress, zstdDecompress } from '../../../src/stages/zstd.js';
import {
  decodeStages,
  parseIdentities,
  parseRecipients,
  writeSuffix,
} from '../../../src/stores/s3/archive-codec.js';
import { randomChunks, rng, runThrough, runThroughCatching } from '../../fixtures/streams/index.js';

/** 1 MiB of mixed data: random, then runs (compressible). */
function sample(): Buffer {
  const r = randomBytes(256 * 1024);
  return Buffer.concat([r, Buffer.alloc(512 * 1024, 0x41), r.subarray(0, 256 * 1024)]);
}

describe('zstd stages', () => {
  it('round-trip in random chunk sizes; the output is a zstd frame, smaller', async () => {
    const data = sample();
    const packed = await runThrough(
      randomChunks(data, rng(1), 70_000),
      zstdCompress({ level: 3 }).stream,
    );
    assert.deepEqual([...packed.bytes.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'zstd magic');
    assert.ok(packed.bytes.length < data.length / 2, `${packed.bytes.length} bytes`);
    const back = await runThrough(
      randomChunks(packed.bytes, rng(2), 5000),
      zstdDecompress().stream,
    );
    assert.ok(back.bytes.equals(data));
  });

  it('an empty stream round-trips', async () => {
    const packed = await runThrough([], zstdCompress().stream);
    const back = await runThrough([packed.bytes], zstdDecompress().stream);
    assert.equal(back.bytes.length, 0);
  });

  it('a truncated or corrupt frame fails the decompressor (zstd exits non-zero)', async () => {
    const packed = (await runThrough([sample()], zstdCompress().stream)).bytes;
    const cut = await runThroughCatching(
      [packed.subarray(0, packed.length - 100)],
      zstdDecompress().stream,
    );
    assert.match(String((cut.error as Error)?.message), /zstd .*failed/);
    const junk = await runThroughCatching([randomBytes(5000)], zstdDecompress().stream);
    assert.match(String((junk.error as Error)?.message), /zstd .*failed/);
  });

  it('refuses a level outside 1–19', () => {
    assert.throws(() => zstdCompress({ level: 0 }), UsageError);
    assert.throws(() => zstdCompress({ level: 22 }), UsageError);
  });
});

describe('age stages', async () => {
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  const other = await generateIdentity();

  const encrypt = async (data: Buffer) =>
    (
      await runThrough(
        randomChunks(data, rng(3), 100_000),
        ageEncrypt({ recipients: [recipient] }).stream,
      )
    ).bytes;

  it('round-trip in random chunk sizes; the output is an age file, 16 bytes of tag per 64 KiB', async () => {
    const data = sample();
    const enc = await encrypt(data);
    assert.equal(enc.subarray(0, 21).toString(), 'age-encryption.org/v1');
    assert.ok(enc.length > data.length && enc.length < data.length + 1024, `${enc.length} bytes`);
    const back = await runThrough(
      randomChunks(enc, rng(4), 9000),
      ageDecrypt({ identities: [other, identity], where: 's3://b/k' }).stream,
    );
    assert.ok(back.bytes.equals(data));
  });

  it('a wrong identity fails before any byte, naming the object', async () => {
    const enc = await encrypt(sample());
    const r = await runThroughCatching(
      [enc],
      ageDecrypt({ identities: [other], where: 's3://b/k.age' }).stream,
    );
    assert.ok(r.error instanceof DecryptError, String(r.error));
    assert.equal(r.error.reason, 'identity');
    assert.match(r.error.message, /^s3:\/\/b\/k\.age: cannot decrypt/);
    assert.equal(r.bytes.length, 0);
  });

  it('a flipped byte fails authentication; nothing from the bad chunk on is handed on', async () => {
    const data = sample();
    const enc = await encrypt(data);
    const at = enc.length - 200 * 1024; // inside a chunk in the middle
    enc[at] = enc[at]! ^ 1;
    const r = await runThroughCatching(
      [enc],
      ageDecrypt({ identities: [identity], where: 's3://b/k' }).stream,
    );
    assert.ok(r.error instanceof DecryptError, String(r.error));
    assert.equal(r.error.reason, 'auth');
    assert.match(r.error.message, /^s3:\/\/b\/k: age authentication failed/);
    assert.ok(r.bytes.length < data.length - 128 * 1024, `${r.bytes.length} bytes passed`);
    assert.ok(data.subarray(0, r.bytes.length).equals(r.bytes), 'what passed is the true prefix');
  });

  it('a truncated file (last chunk missing) fails', async () => {
    const enc = await encrypt(sample());
    const r = await runThroughCatching(
      [enc.subarray(0, enc.length - 1000)],
      ageDecrypt({ identities: [identity], where: 'w' }).stream,
    );
    assert.ok(r.error instanceof DecryptError, String(r.error));
  });

  it('a passphrase (scrypt) round-trips; recipients and a passphrase together are refused', async () => {
    const data = randomBytes(100_000);
    const enc = (
      await runThrough([data], ageEncrypt({ passphrase: 'correct horse', scryptLogN: 10 }).stream)
    ).bytes;
    const back = await runThrough(
      [enc],
      ageDecrypt({ passphrases: ['correct horse'], where: 'w' }).stream,
    );
    assert.ok(back.bytes.equals(data));
    assert.throws(() => ageEncrypt({ recipients: [recipient], passphrase: 'x' }), UsageError);
  });

  it('refuses malformed recipients and identities, and decrypting with nothing', () => {
    assert.throws(() => ageEncrypt({ recipients: ['age1nope'] }), /not an age X25519 recipient/);
    assert.throws(() => ageEncrypt({ recipients: [] }), UsageError);
    assert.throws(
      () => ageDecrypt({ identities: ['AGE-SECRET-KEY-1XYZ'], where: 'w' }),
      UsageError,
    );
    assert.throws(
      () => ageDecrypt({ where: 's3://b/k.age' }),
      /is encrypted: give its age identity/,
    );
  });
});

describe('S3 archive codec', () => {
  it('reads recipients and identity files: one key a line, # comments', () => {
    const text = '# backups\nage1aaa\n\n  age1bbb  \n# age1ccc\n';
    assert.deepEqual(parseRecipients(text), ['age1aaa', 'age1bbb']);
    const keygen = '# created: 2026\n# public key: age1x\nAGE-SECRET-KEY-1ABC\n';
    assert.deepEqual(parseIdentities(keygen), ['AGE-SECRET-KEY-1ABC']);
  });

  it('writes .zst, .age, .zst.age (compress, then encrypt); reads in the reverse order', () => {
    assert.equal(writeSuffix({}), '');
    assert.equal(writeSuffix({ compressLevel: 3 }), '.zst');
    assert.equal(writeSuffix({ recipients: ['age1x'] }), '.age');
    assert.equal(writeSuffix({ compressLevel: 1, passphraseFile: '/p' }), '.zst.age');
    assert.deepEqual(
      decodeStages('', {}, 'w').map((s) => s.name),
      [],
    );
    assert.deepEqual(
      decodeStages('.zst', {}, 'w').map((s) => s.name),
      ['zstd-decompress'],
    );
    assert.throws(() => decodeStages('.zst.age', {}, 's3://b/k.zst.age'), /--age-identity/);
  });
});
