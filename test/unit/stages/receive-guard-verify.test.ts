/**
 * The receive guard with `verify`: one parse that both guards and verifies, so
 * a guarded receive needs no stream-verify in front. It must catch what
 * stream-verify catches (a CRC flip anywhere, trailing bytes), release nothing
 * of a bad command and never the END of a stream that did not verify; without
 * `verify` it checks framing only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamCorruptError } from '../../../src/errors.js';
import { Cmd } from '../../../src/btrfs/send-stream/constants.js';
import { SendStreamParser } from '../../../src/btrfs/send-stream/parser.js';
import type { CommandEvent } from '../../../src/btrfs/send-stream/types.js';
import { receiveGuard } from '../../../src/stages/receive-guard.js';
import type { ReceiveGuardOptions } from '../../../src/stages/receive-guard.js';
import {
  FIXTURES,
  fixture,
  golden,
  randomChunks,
  rng,
  runThroughCatching,
} from '../../fixtures/streams/index.js';

/** The guard options a recorded stream passes with: its own UUID and parent. */
function optionsFor(name: string): ReceiveGuardOptions {
  const first = golden(name).events.find((e) => e.type === 'command') as {
    attributes: { name: string; value: string }[];
  };
  const attr = (n: string) => first.attributes.find((a) => a.name === n)?.value;
  return {
    target: attr('uuid')!,
    ...(attr('clone_uuid') ? { parent: attr('clone_uuid')! } : {}),
  };
}

function commandsOf(bytes: Buffer): CommandEvent[] {
  const p = new SendStreamParser({ verify: 'none', collect: () => false });
  return p.push(bytes).filter((e): e is CommandEvent => e.type === 'command');
}

function flipped(bytes: Buffer, bit: number): Buffer {
  const b = Buffer.from(bytes);
  b[bit >> 3]! ^= 1 << (bit & 7);
  return b;
}

async function guarded(name: string, bytes: Buffer, verify: boolean, chunks?: Buffer[]) {
  const stage = receiveGuard({ ...optionsFor(name), verify });
  return runThroughCatching(chunks ?? randomChunks(bytes, rng(5), 4096), stage.stream);
}

describe('receiveGuard with verify', () => {
  it('passes every recorded single-subvolume kernel stream unchanged', async () => {
    for (const name of FIXTURES.filter((f) => !f.startsWith('multi'))) {
      const bytes = fixture(name);
      const { bytes: out, error } = await guarded(name, bytes, true);
      assert.equal(error, undefined, `${name}: ${String(error)}`);
      assert.ok(out.equals(bytes), name);
    }
  });

  it('stops a flipped CRC, payload or END bit with StreamCorruptError, releasing nothing of the bad command', async () => {
    const name = 'incr-v1';
    const bytes = fixture(name);
    const cmds = commandsOf(bytes);
    const mid = cmds[Math.floor(cmds.length / 2)]!;
    const end = cmds.at(-1)!;
    assert.equal(end.cmd, Cmd.END);
    for (const [what, bit, at] of [
      ['crc', (mid.offset + 8) * 8 + 5, mid.offset],
      ['payload', (mid.offset + 10 + mid.length - 1) * 8 + 6, mid.offset],
      ['END crc', (end.offset + 9) * 8 + 7, end.offset],
    ] as const) {
      const { bytes: out, error } = await guarded(name, flipped(bytes, bit), true);
      assert.ok(error instanceof StreamCorruptError, `${what}: ${String(error)}`);
      assert.ok(out.length <= at, `${what}: released ${out.length} > ${at}`);
      assert.ok(bytes.subarray(0, out.length).equals(out), what);
    }
  });

  it('stops 300 random single-bit flips of a recorded stream, never releasing END', async () => {
    const name = 'full-v1';
    const bytes = fixture(name);
    const endAt = commandsOf(bytes).at(-1)!.offset;
    const random = rng(17);
    for (let i = 0; i < 300; i++) {
      const bit = Math.floor(random() * bytes.length * 8);
      const { bytes: out, error } = await guarded(name, flipped(bytes, bit), true, [
        flipped(bytes, bit),
      ]);
      assert.ok(error, `bit ${bit} accepted`);
      assert.ok(out.length <= endAt, `bit ${bit}: END released`);
    }
  });

  it('holds END back until the input ended: trailing bytes fail the stream with END unreleased', async () => {
    const name = 'incr-v1';
    const bytes = fixture(name);
    const endAt = commandsOf(bytes).at(-1)!.offset;
    for (const tail of [Buffer.from([0]), Buffer.from('x'.repeat(100))]) {
      const { bytes: out, error } = await guarded(name, Buffer.concat([bytes, tail]), true, [
        bytes,
        tail,
      ]);
      assert.ok(error instanceof StreamCorruptError, String(error));
      assert.equal(out.length, endAt);
    }
  });

  it('without verify, a flipped data bit passes (framing only): the option is what verifies', async () => {
    const name = 'incr-v1';
    const bytes = fixture(name);
    const write = commandsOf(bytes).find((c) => c.cmd === Cmd.WRITE)!;
    const bit = (write.offset + 10 + write.length - 1) * 8 + 6;
    const bad = flipped(bytes, bit);
    const plain = await guarded(name, bad, false);
    assert.equal(plain.error, undefined, String(plain.error));
    assert.ok(plain.bytes.equals(bad));
    const checked = await guarded(name, bad, true);
    assert.ok(checked.error instanceof StreamCorruptError, String(checked.error));
  });
});
