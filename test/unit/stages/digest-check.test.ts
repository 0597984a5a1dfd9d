import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { StreamCorruptError, UsageError } from '../../../src/errors.js';
import {
  END_COMMAND_BYTES,
  META_SHA256,
  META_STREAM_VERSION,
  digestCheck,
  digestMetadata,
  recordedDigest,
  streamDigest,
} from '../../../src/stages/digest-check.js';
import type { RecordedDigest } from '../../../src/stages/digest-check.js';
import {
  byteChunks,
  fixture,
  randomChunks,
  rng,
  runThrough,
  runThroughCatching,
} from '../../fixtures/streams/index.js';
import { eventLoopTurns, waitFor } from '../../fixtures/wait-for.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const WHERE = 's3://bkt/x/s1/u_p';

function recorded(bytes: Buffer): RecordedDigest {
  return { kind: 'recorded', sha256: sha(bytes), version: bytes.readUInt32LE(13) };
}

/** The stream with its `index`-th command (0-based, after the header) cut out. */
function dropCommand(bytes: Buffer, index: number): Buffer {
  let at = 17;
  for (let i = 0; i < index; i++) at += 10 + bytes.readUInt32LE(at);
  const len = 10 + bytes.readUInt32LE(at);
  return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + len)]);
}

async function check(input: Buffer, expected: RecordedDigest, chunks?: Buffer[]) {
  const unrecorded: string[] = [];
  const stage = digestCheck({
    where: WHERE,
    expected: Promise.resolve(expected),
    onUnrecorded: (k) => unrecorded.push(k),
  });
  const { bytes, error } = await runThroughCatching(chunks ?? [input], stage.stream);
  const result = await stage.result.then(
    (r) => r,
    (e: unknown) => e,
  );
  return { bytes, error, result, unrecorded };
}

describe('streamDigest', () => {
  it('passes the stream unchanged; digest = SHA-256 of every byte, version from the header', async () => {
    for (const name of ['full-v1', 'incr-v2']) {
      const bytes = fixture(name);
      const stage = streamDigest();
      const { bytes: out } = await runThrough(randomChunks(bytes, rng(7), 3000), stage.stream);
      assert.ok(out.equals(bytes));
      const d = stage.digest();
      assert.deepEqual(d, {
        sha256: sha(bytes),
        version: bytes.readUInt32LE(13),
        bytes: bytes.length,
      });
      assert.deepEqual(await stage.result, d);
      assert.deepEqual(digestMetadata(d), {
        [META_SHA256]: sha(bytes),
        [META_STREAM_VERSION]: String(bytes.readUInt32LE(13)),
      });
    }
  });

  it('reads the version from a header split across single bytes; none for a non-stream', async () => {
    const bytes = fixture('full-v1');
    const stage = streamDigest();
    await runThrough(byteChunks(bytes.subarray(0, 40)), stage.stream);
    assert.equal(stage.digest().version, 1);
    const other = streamDigest();
    await runThrough([Buffer.from('not a btrfs stream at all')], other.stream);
    assert.equal(other.digest().version, undefined);
    assert.deepEqual(Object.keys(digestMetadata(other.digest())), [META_SHA256]);
  });

  it('refuses to give a digest before the stream ended', () => {
    assert.throws(() => streamDigest().digest(), UsageError);
  });
});

describe('recordedDigest', () => {
  it('reads recorded, pending, absent and damaged metadata', () => {
    const h = 'ab'.repeat(32);
    assert.deepEqual(recordedDigest({ [META_SHA256]: h, [META_STREAM_VERSION]: '1' }), {
      kind: 'recorded',
      sha256: h,
      version: 1,
    });
    assert.deepEqual(recordedDigest({ 'Buttersink-SHA256': h.toUpperCase() }), {
      kind: 'recorded',
      sha256: h,
      version: undefined,
    });
    assert.deepEqual(recordedDigest({ [META_SHA256]: 'pending' }), { kind: 'pending' });
    assert.deepEqual(recordedDigest(undefined), { kind: 'none' });
    assert.deepEqual(recordedDigest({ other: 'x' }), { kind: 'none' });
    assert.equal(recordedDigest({ [META_SHA256]: 'abc' }).kind, 'invalid');
    assert.equal(
      recordedDigest({ [META_SHA256]: h, [META_STREAM_VERSION]: 'two' }).kind,
      'invalid',
    );
    assert.equal(recordedDigest({ [META_STREAM_VERSION]: '1' }).kind, 'invalid');
  });
});

describe('digestCheck', () => {
  it('passes a matching stream unchanged, in any chunking', async () => {
    const bytes = fixture('incr-v1');
    for (const chunks of [[bytes], byteChunks(bytes), randomChunks(bytes, rng(3), 500)]) {
      const { bytes: out, error, result } = await check(bytes, recorded(bytes), chunks);
      assert.equal(error, undefined);
      assert.ok(out.equals(bytes));
      assert.deepEqual(result, {
        status: 'verified',
        sha256: sha(bytes),
        version: 1,
        bytes: bytes.length,
      });
    }
  });

  it('a dropped whole command: fails naming the key, and END is never handed on', async () => {
    const good = fixture('full-v1');
    const bad = dropCommand(good, 3);
    const { bytes: out, error, result } = await check(bad, recorded(good), byteChunks(bad));
    assert.ok(error instanceof StreamCorruptError, String(error));
    assert.equal(
      error.message,
      `${WHERE}: whole-stream SHA-256 mismatch: stored ${sha(good)}, read ${sha(bad)}; the diff is damaged`,
    );
    assert.ok(!error.message.includes('\n'));
    assert.equal(result, error);
    assert.ok(out.length <= bad.length - END_COMMAND_BYTES, `${out.length} of ${bad.length}`);
    assert.ok(bad.subarray(0, out.length).equals(out), 'what came out is a prefix');
  });

  it('a changed version byte: fails at the header, before any byte is handed on', async () => {
    const good = fixture('full-v1');
    const bad = Buffer.from(good);
    bad[13] = 2;
    const { bytes: out, error } = await check(bad, recorded(good));
    assert.ok(error instanceof StreamCorruptError);
    assert.equal(
      error.message,
      `${WHERE}: stream version 2 in the header, 1 recorded at upload; the diff is damaged`,
    );
    assert.equal(out.length, 0);
  });

  it('holds the last bytes back until the input ended', async () => {
    const bytes = fixture('full-v1');
    const stage = digestCheck({ where: WHERE, expected: recorded(bytes) });
    const input = new PassThrough();
    const out: Buffer[] = [];
    stage.stream.on('data', (c: Buffer) => out.push(c));
    input.pipe(stage.stream);
    for (const c of randomChunks(bytes, rng(5), 100)) input.write(c);
    // Everything written has been taken in and passed on as far as it will go.
    await waitFor(() => out.length > 0 && stage.stream.writableLength === 0, {
      what: 'the stage to take in every chunk',
    });
    await eventLoopTurns(10);
    const before = Buffer.concat(out).length;
    assert.ok(before > 0 && before <= bytes.length - END_COMMAND_BYTES, `${before}`);
    input.end();
    const r = await stage.result;
    assert.equal(r.status, 'verified');
    assert.ok(Buffer.concat(out).equals(bytes));
  });

  it('no recorded digest (older writer) or pending: passes, says so', async () => {
    const bytes = fixture('full-v2');
    const none = await check(bytes, { kind: 'none' });
    assert.equal(none.error, undefined);
    assert.ok(none.bytes.equals(bytes));
    assert.equal((none.result as { status: string }).status, 'none');
    assert.deepEqual(none.unrecorded, ['none']);
    const pending = await check(bytes, { kind: 'pending' });
    assert.equal((pending.result as { status: string }).status, 'pending');
    assert.deepEqual(pending.unrecorded, ['pending']);
    const damaged = dropCommand(bytes, 2);
    assert.equal((await check(damaged, { kind: 'none' })).error, undefined, 'CRCs decide then');
  });

  it('damaged metadata fails before any byte', async () => {
    const bytes = fixture('full-v1');
    const { error, bytes: out } = await check(bytes, { kind: 'invalid', reason: "SHA-256 'x'" });
    assert.ok(error instanceof StreamCorruptError);
    assert.match(error.message, /^s3:\/\/bkt\/x\/s1\/u_p: unreadable whole-stream checksum/);
    assert.equal(out.length, 0);
  });

  it('fails when what it was to compare with cannot be read', async () => {
    const stage = digestCheck({ where: WHERE, expected: Promise.reject(new Error('HEAD failed')) });
    const { error } = await runThroughCatching([fixture('full-v1')], stage.stream);
    assert.match(String(error), /HEAD failed/);
  });

  it('rejects bad options', () => {
    assert.throws(
      () => digestCheck({ where: WHERE, expected: { kind: 'none' }, holdBack: 0 }),
      UsageError,
    );
  });
});
