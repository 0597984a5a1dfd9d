import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamVersionError, streamVersionGate } from '../../../src/stages/stream-version-gate.js';
import {
  byteChunks,
  fixture,
  runThrough,
  runThroughCatching,
} from '../../fixtures/streams/index.js';

const gate = (maxVersion: number) =>
  streamVersionGate({
    maxVersion,
    receiver: 'btrfs receive at ssh://host',
    why: 'btrfs-progs 5.10',
  });

describe('streamVersionGate', () => {
  it('passes a protocol 1 stream unchanged into a protocol 1 receiver, whatever the chunking', async () => {
    const bytes = fixture('incr-v1');
    for (const chunks of [
      [bytes],
      byteChunks(bytes.subarray(0, 40)).concat([bytes.subarray(40)]),
    ]) {
      const stage = gate(1);
      const out = await runThrough(chunks, stage.stream);
      assert.ok(out.bytes.equals(bytes));
      assert.deepEqual(await stage.result, { version: 1 });
    }
  });

  it('passes protocol 2 into a protocol 2 receiver', async () => {
    const bytes = fixture('compressed-v2');
    const out = await runThrough([bytes], gate(2).stream);
    assert.ok(out.bytes.equals(bytes));
  });

  it('stops a protocol 2 stream before a protocol 1 receiver sees a byte, in one clear line', async () => {
    for (const chunks of [
      [fixture('compressed-v2')],
      byteChunks(fixture('full-v2').subarray(0, 100)),
    ]) {
      const stage = gate(1);
      stage.result.catch(() => undefined);
      const { bytes, error } = await runThroughCatching(chunks, stage.stream);
      assert.equal(bytes.length, 0);
      assert.ok(error instanceof StreamVersionError, String(error));
      assert.equal(error.code, 'STREAM_VERSION');
      assert.equal(
        error.message,
        'this diff is a protocol 2 send stream (a diff sent with --compressed-data), but btrfs receive at ssh://host reads protocol 1 only (btrfs-progs 5.10); restore it with btrfs-progs 6.0 or later on the receiving host',
      );
    }
  });

  it('leaves input that is no send stream to the parsers behind it', async () => {
    for (const input of [Buffer.from('not a send stream at all, no'), Buffer.from('short')]) {
      const out = await runThrough([input], gate(1).stream);
      assert.ok(out.bytes.equals(input));
    }
  });
});
