import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError, StreamCorruptError, UsageError } from '../../../src/errors.js';
import { Cmd } from '../../../src/btrfs/send-stream/constants.js';
import { createSendCrc } from '../../../src/btrfs/send-stream/crc.js';
import { SendStreamParser } from '../../../src/btrfs/send-stream/parser.js';
import type { CommandEvent } from '../../../src/btrfs/send-stream/types.js';
import { streamVerify } from '../../../src/stages/stream-verify.js';
import {
  FIXTURES,
  byteChunks,
  fixture,
  randomChunks,
  rng,
  runThrough,
  runThroughCatching,
} from '../../fixtures/streams/index.js';

async function commandsOf(bytes: Buffer): Promise<CommandEvent[]> {
  const p = new SendStreamParser({ crc: await createSendCrc(), collect: () => false });
  const out = p.push(bytes).filter((e): e is CommandEvent => e.type === 'command');
  p.end();
  return out;
}

/** Runs `bytes` through a fresh stage (in `chunks` pieces if given); returns output, error, result. */
async function verify(bytes: Buffer, chunks?: Buffer[]) {
  const stage = streamVerify();
  const { bytes: out, error } = await runThroughCatching(chunks ?? [bytes], stage.stream);
  const result = await stage.result.then(
    (r) => r,
    (e: unknown) => e,
  );
  return { out, error, result };
}

function flipped(bytes: Buffer, bit: number): Buffer {
  const b = Buffer.from(bytes);
  b[bit >> 3]! ^= 1 << (bit & 7);
  return b;
}

describe('streamVerify', () => {
  for (const name of FIXTURES) {
    it(`${name}: passes the stream unchanged and reports it`, async () => {
      const bytes = fixture(name);
      const cmds = await commandsOf(bytes);
      const stage = streamVerify();
      const { bytes: out } = await runThrough([bytes], stage.stream);
      assert.ok(out.equals(bytes));
      const r = await stage.result;
      assert.equal(r.bytes, bytes.length);
      assert.equal(r.commands, cmds.length);
      assert.equal(r.version, bytes.readUInt32LE(13));
      assert.equal(r.streams, name === 'multi-v1' ? 2 : 1);
    });
  }

  it('gives the same output byte by byte and in random chunkings', async () => {
    const bytes = fixture('full-v2');
    const random = rng(3);
    for (const chunks of [
      byteChunks(bytes),
      ...Array.from({ length: 10 }, () => randomChunks(bytes, random, 9000)),
    ]) {
      const stage = streamVerify();
      const { bytes: out } = await runThrough(chunks, stage.stream);
      assert.ok(out.equals(bytes));
      assert.equal((await stage.result).bytes, bytes.length);
    }
  });

  it('rejects a flip in each part: header, len, cmd, crc, payload, END; names index and offset', async () => {
    const bytes = fixture('incr-v1');
    const cmds = await commandsOf(bytes);
    const mid = cmds[Math.floor(cmds.length / 2)]!;
    const end = cmds[cmds.length - 1]!;
    assert.equal(end.cmd, Cmd.END);
    const cases: [string, number, number][] = [
      ['magic', 2 * 8, -1],
      ['version', 13 * 8, -1],
      ['version high byte', 16 * 8 + 7, -1],
      ['len', (mid.offset + 1) * 8 + 3, mid.index],
      ['cmd', (mid.offset + 4) * 8, mid.index],
      ['crc', (mid.offset + 8) * 8 + 5, mid.index],
      ['payload', (mid.offset + 10 + mid.length - 1) * 8 + 6, mid.index],
      ['END len', end.offset * 8, end.index],
      ['END cmd', (end.offset + 4) * 8 + 1, end.index],
      ['END crc', (end.offset + 9) * 8 + 7, end.index],
    ];
    for (const [what, bit, index] of cases) {
      const { out, error, result } = await verify(flipped(bytes, bit));
      assert.ok(error instanceof StreamCorruptError, what);
      assert.equal(result, error, what);
      if (index === -1) {
        assert.equal(error.commandIndex, -1, what);
        assert.equal(error.offset, 0, what);
      } else if (what !== 'len') {
        // A bad length may first surface as a later framing problem.
        assert.equal(error.commandIndex, index, what);
        assert.equal(error.offset, cmds[index]!.offset, what);
      }
      // Nothing from the bad command on was released, and never END.
      assert.ok(
        out.length <= (index === -1 ? 0 : cmds[index]!.offset),
        `${what}: released ${out.length}`,
      );
      assert.ok(bytes.subarray(0, out.length).equals(out), what);
    }
  });

  it('rejects every single-bit flip of a whole recorded stream (exhaustive, parser as the stage sets it up)', async () => {
    // The stage costs ~1.5 ms to set up, too slow for 11,744 runs: this drives
    // its parser configuration directly; the stage itself gets the sample below.
    const bytes = fixture('incr-nodata-v1');
    const crc = await createSendCrc();
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const p = new SendStreamParser({ crc, verify: 'all', collect: () => false, maxVersion: 2 });
      assert.throws(
        () => {
          p.push(flipped(bytes, bit));
          p.end();
        },
        StreamCorruptError,
        `bit ${bit} accepted`,
      );
    }
  });

  it('rejects ≥ 2000 random single-bit flips of a 155 KB stream and every bit of its header, first and last commands', async () => {
    const bytes = fixture('full-v1');
    const cmds = await commandsOf(bytes);
    const first = cmds[0]!;
    const last = cmds.at(-1)!;
    const bits = new Set<number>();
    for (let bit = 0; bit < (first.offset + 10 + first.length) * 8; bit++) bits.add(bit);
    for (let bit = last.offset * 8; bit < bytes.length * 8; bit++) bits.add(bit);
    const random = rng(11);
    while (bits.size < 2000 + (first.offset + 10 + first.length + 10) * 8) {
      bits.add(Math.floor(random() * bytes.length * 8));
    }
    for (const bit of bits) {
      const { out, error } = await verify(flipped(bytes, bit));
      assert.ok(error instanceof StreamCorruptError, `bit ${bit} accepted`);
      assert.ok(out.length <= last.offset, `bit ${bit}: END released`);
    }
  });

  it('rejects truncation at every command boundary and inside commands, never releasing END', async () => {
    const bytes = fixture('incr-v2');
    const cmds = await commandsOf(bytes);
    const cuts = new Set([0, 1, 16, 17, 18, bytes.length - 1]);
    for (const c of cmds)
      cuts
        .add(c.offset)
        .add(c.offset + 5)
        .add(c.offset + 10 + (c.length >> 1));
    cuts.delete(bytes.length);
    for (const cut of cuts) {
      const { out, error } = await verify(bytes.subarray(0, cut));
      assert.ok(error instanceof StreamCorruptError, `cut at ${cut} accepted`);
      assert.ok(
        out.length <= cut && !out.includes(bytes.subarray(cmds.at(-1)!.offset)),
        `cut ${cut}`,
      );
    }
  });

  it('rejects trailing garbage after END and holds END back', async () => {
    const bytes = fixture('incr-v1');
    const endAt = (await commandsOf(bytes)).at(-1)!.offset;
    for (const tail of [
      Buffer.from([0]),
      Buffer.from('x'.repeat(100)),
      Buffer.from('btrfs-streax'),
    ]) {
      // Garbage in its own chunk: everything before END was released, END was not.
      const { out, error } = await verify(Buffer.concat([bytes, tail]), [bytes, tail]);
      assert.ok(error instanceof StreamCorruptError);
      assert.equal(error.offset, bytes.length);
      assert.equal(out.length, endAt);
    }
  });

  it('after a verified stream, a truncated second stream fails at its own offset', async () => {
    const bytes = fixture('incr-v1');
    const { out, error } = await verify(Buffer.concat([bytes, bytes.subarray(0, 20)]));
    assert.ok(error instanceof StreamCorruptError);
    assert.equal(error.offset, bytes.length + 17);
    // The first stream verified completely, END included, and so did the second header.
    assert.ok(out.equals(Buffer.concat([bytes, bytes.subarray(0, 17)])));
    assert.equal(out.length, bytes.length + 17);
  });

  it('accepts v3 only with maxVersion 3, and validates options', async () => {
    const v3 = Buffer.from(fixture('incr-v2'));
    v3.writeUInt32LE(3, 13);
    const { error } = await verify(v3);
    assert.ok(error instanceof StreamCorruptError);
    const stage = streamVerify({ maxVersion: 3 });
    await runThrough([v3], stage.stream);
    assert.equal((await stage.result).version, 3);
    assert.throws(() => streamVerify({ maxVersion: 4 }), UsageError);
    assert.throws(() => streamVerify({ maxCommandLength: -1 }), UsageError);
  });

  it('an aborted signal destroys the stage with AbortedError', async () => {
    const ac = new AbortController();
    const stage = streamVerify({ signal: ac.signal });
    stage.stream.write(fixture('incr-v1').subarray(0, 100));
    ac.abort();
    await assert.rejects(stage.result, AbortedError);
    assert.ok(stage.stream.destroyed);
    const late = streamVerify({ signal: ac.signal });
    await assert.rejects(late.result, AbortedError);
  });

  it('result rejects when the stream is destroyed before the end', async () => {
    const stage = streamVerify();
    stage.stream.destroy();
    await assert.rejects(stage.result);
  });
});
