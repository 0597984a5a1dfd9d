/**
 * The stages a protocol 2 stream with compressed data (ENCODED_WRITE) passes
 * through, fed the stream a real `btrfs send --compressed-data` recorded
 * (fixtures/streams/compressed-v2.bin, checked against `btrfs receive --dump`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cmd, SendStreamParser, createSendCrc } from '../../../src/btrfs/send-stream/index.js';
import type { CommandEvent } from '../../../src/btrfs/send-stream/index.js';
import { streamDigest } from '../../../src/stages/digest-check.js';
import { streamVerify } from '../../../src/stages/stream-verify.js';
import { uuidRewrite } from '../../../src/stages/uuid-rewrite.js';
import { fixture, randomChunks, rng, runThrough } from '../../fixtures/streams/index.js';

const NEW = '11111111-2222-4333-8444-555555555555';

async function commands(bytes: Buffer): Promise<CommandEvent[]> {
  const p = new SendStreamParser({ crc: await createSendCrc() });
  const out = p.push(bytes).filter((e): e is CommandEvent => e.type === 'command');
  p.end();
  return out;
}

describe('a compressed-data (protocol 2) stream through the stages', () => {
  const bytes = fixture('compressed-v2');

  it('holds ENCODED_WRITE commands (what the stages below must pass)', async () => {
    const cmds = await commands(bytes);
    assert.equal(cmds.filter((c) => c.cmd === Cmd.ENCODED_WRITE).length, 2);
  });

  it('uuid-rewrite renames the subvolume and leaves every ENCODED_WRITE byte as it was', async () => {
    const stage = uuidRewrite({ target: { uuid: NEW }, subvolumeName: 'csnap.part' });
    const out = await runThrough(randomChunks(bytes, rng(7), 3000), stage.stream);
    const before = await commands(bytes);
    const after = await commands(out.bytes);
    assert.equal(after.length, before.length);
    const encoded = (cs: CommandEvent[]) =>
      cs.filter((c) => c.cmd === Cmd.ENCODED_WRITE).map((c) => c.payload!.toString('hex'));
    assert.deepEqual(encoded(after), encoded(before));
    assert.equal(out.bytes.readUInt32LE(13), 2, 'still a protocol 2 stream');
    assert.equal((await stage.result).subvolumes[0]?.to.uuid, NEW);
  });

  it('stream-verify passes it unchanged and reports version 2', async () => {
    const stage = streamVerify();
    const out = await runThrough(randomChunks(bytes, rng(8), 5000), stage.stream);
    assert.ok(out.bytes.equals(bytes));
    assert.equal((await stage.result).version, 2);
  });

  it('the S3 digest tap records version 2 (buttersink-stream-version)', async () => {
    const stage = streamDigest();
    await runThrough(randomChunks(bytes, rng(9), 4000), stage.stream);
    assert.equal(stage.digest().version, 2);
  });
});
