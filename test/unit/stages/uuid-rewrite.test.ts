import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError, StreamCorruptError, UsageError } from '../../../src/errors.js';
import { Attr, Cmd } from '../../../src/btrfs/send-stream/constants.js';
import { createSendCrc } from '../../../src/btrfs/send-stream/crc.js';
import { SendStreamParser } from '../../../src/btrfs/send-stream/parser.js';
import type { CommandEvent } from '../../../src/btrfs/send-stream/types.js';
import { readU64, uuidToString } from '../../../src/btrfs/send-stream/values.js';
import { uuidRewrite } from '../../../src/stages/uuid-rewrite.js';
import type { UuidRewriteOptions } from '../../../src/stages/uuid-rewrite.js';
import {
  byteChunks,
  fixture,
  randomChunks,
  rng,
  runThrough,
  runThroughCatching,
} from '../../fixtures/streams/index.js';

const NEW = '11111111-2222-3333-4444-555555555555';
const NEW_PARENT = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';

/** Parses with every CRC checked: the output of the stage must verify. */
async function parsed(bytes: Buffer): Promise<CommandEvent[]> {
  const p = new SendStreamParser({ crc: await createSendCrc() });
  const out = p.push(bytes).filter((e): e is CommandEvent => e.type === 'command');
  p.end();
  return out;
}

function attr(c: CommandEvent, type: number): Buffer {
  const a = c.attributes!.find((x) => x.type === type);
  assert.ok(a, `command ${c.index} lacks attribute ${type}`);
  return a.value;
}

async function rewrite(bytes: Buffer, opts: UuidRewriteOptions, chunks?: Buffer[]) {
  const stage = uuidRewrite(opts);
  const out = await runThrough(chunks ?? [bytes], stage.stream);
  return { ...out, result: await stage.result };
}

/**
 * Asserts that `out` equals `input` byte for byte outside the commands listed
 * in `changed` (by index), and that those have the same offsets and lengths.
 */
function assertOnlyChanged(
  input: CommandEvent[],
  output: CommandEvent[],
  inBytes: Buffer,
  outBytes: Buffer,
  changed: Set<number>,
) {
  assert.equal(outBytes.length, inBytes.length);
  assert.equal(output.length, input.length);
  for (const c of input) {
    const o = output[c.index]!;
    assert.equal(o.offset, c.offset);
    assert.equal(o.length, c.length);
    const a = inBytes.subarray(c.offset, c.offset + 10 + c.length);
    const b = outBytes.subarray(c.offset, c.offset + 10 + c.length);
    assert.equal(
      a.equals(b),
      !changed.has(c.index),
      `command ${c.index} (${c.cmd}) changed: ${!a.equals(b)}`,
    );
  }
  assert.ok(inBytes.subarray(0, 17).equals(outBytes.subarray(0, 17)));
}

describe('uuidRewrite', () => {
  for (const name of ['incr-v1', 'incr-v2']) {
    it(`${name}: rewrites SNAPSHOT and every CLONE of the parent through one mapping, nothing else`, async () => {
      const bytes = fixture(name);
      const input = await parsed(bytes);
      const snap = input[0]!;
      assert.equal(snap.cmd, Cmd.SNAPSHOT);
      const oldParent = uuidToString(attr(snap, Attr.CLONE_UUID));
      const clones = input.filter((c) => c.cmd === Cmd.CLONE);
      assert.ok(clones.length > 0, 'fixture has CLONE commands');
      assert.ok(clones.every((c) => uuidToString(attr(c, Attr.CLONE_UUID)) === oldParent));

      const { bytes: out, result } = await rewrite(bytes, {
        target: { uuid: NEW, ctransid: 4242n },
        parent: { uuid: NEW_PARENT, ctransid: 17 },
      });
      const output = await parsed(out);
      assertOnlyChanged(input, output, bytes, out, new Set([0, ...clones.map((c) => c.index)]));
      const s = output[0]!;
      assert.equal(uuidToString(attr(s, Attr.UUID)), NEW);
      assert.equal(readU64(attr(s, Attr.CTRANSID)), 4242n);
      assert.equal(uuidToString(attr(s, Attr.CLONE_UUID)), NEW_PARENT);
      assert.equal(readU64(attr(s, Attr.CLONE_CTRANSID)), 17n);
      for (const c of clones) {
        const o = output[c.index]!;
        assert.equal(uuidToString(attr(o, Attr.CLONE_UUID)), NEW_PARENT);
        assert.equal(readU64(attr(o, Attr.CLONE_CTRANSID)), 17n);
        assert.deepEqual(attr(o, Attr.CLONE_PATH), attr(c, Attr.CLONE_PATH));
      }
      assert.equal(result.rewritten, 1 + clones.length);
      assert.equal(result.clonesRewritten, clones.length);
      assert.equal(result.bytes, bytes.length);
      assert.equal(result.commands, input.length);
      assert.deepEqual(result.subvolumes, [
        {
          index: 0,
          path: 'snap2',
          from: {
            uuid: uuidToString(attr(snap, Attr.UUID)),
            ctransid: readU64(attr(snap, Attr.CTRANSID)),
          },
          to: { uuid: NEW, ctransid: 4242n },
          parent: {
            from: { uuid: oldParent, ctransid: readU64(attr(snap, Attr.CLONE_CTRANSID)) },
            to: { uuid: NEW_PARENT, ctransid: 17n },
          },
        },
      ]);
    });
  }

  it('full stream: CLONEs within the subvolume itself follow its new UUID; ctransid kept when not given', async () => {
    const bytes = fixture('full-v1');
    const input = await parsed(bytes);
    const own = uuidToString(attr(input[0]!, Attr.UUID));
    const clones = input.filter((c) => c.cmd === Cmd.CLONE);
    assert.ok(
      clones.length > 0 && clones.every((c) => uuidToString(attr(c, Attr.CLONE_UUID)) === own),
    );
    const { bytes: out, result } = await rewrite(bytes, {
      target: { uuid: NEW },
      parent: { uuid: NEW_PARENT },
    });
    const output = await parsed(out);
    assertOnlyChanged(input, output, bytes, out, new Set([0, ...clones.map((c) => c.index)]));
    assert.equal(uuidToString(attr(output[0]!, Attr.UUID)), NEW);
    assert.deepEqual(attr(output[0]!, Attr.CTRANSID), attr(input[0]!, Attr.CTRANSID));
    for (const c of clones)
      assert.equal(uuidToString(attr(output[c.index]!, Attr.CLONE_UUID)), NEW);
    assert.equal(result.subvolumes[0]!.parent, undefined);
  });

  it('gives identical output byte by byte and in random chunkings', async () => {
    const bytes = fixture('incr-v2');
    const opts = { target: { uuid: NEW, ctransid: 5 }, parent: { uuid: NEW_PARENT, ctransid: 3 } };
    const expected = (await rewrite(bytes, opts)).bytes;
    assert.ok(!expected.equals(bytes));
    assert.ok((await rewrite(bytes, opts, byteChunks(bytes))).bytes.equals(expected));
    const random = rng(5);
    for (let i = 0; i < 20; i++) {
      const chunks = randomChunks(bytes, random, [7, 60, 500, 5000][i % 4]);
      assert.ok((await rewrite(bytes, opts, chunks)).bytes.equals(expected), `chunking ${i}`);
    }
  });

  it('passes unchanged commands through as views of the input chunks', async () => {
    const bytes = fixture('full-v1');
    const { chunks } = await rewrite(bytes, { target: { uuid: NEW } }, [bytes]);
    const copies = chunks.filter((c) => c.buffer !== bytes.buffer);
    const input = await parsed(bytes);
    const changed = input.filter((c) => c.cmd === Cmd.SUBVOL || c.cmd === Cmd.CLONE);
    assert.deepEqual(
      copies.map((c) => c.length),
      changed.map((c) => 10 + c.length),
    );
  });

  it('multi-subvolume streams: target maps the first subvolume, `map` the others', async () => {
    for (const name of ['multi-v1', 'multi-e-v1']) {
      const bytes = fixture(name);
      const input = await parsed(bytes);
      const subvols = input.filter((c) => c.cmd === Cmd.SUBVOL);
      assert.equal(subvols.length, 2);
      const second = uuidToString(attr(subvols[1]!, Attr.UUID));
      const other = 'cccccccc-0000-0000-0000-000000000001';
      const { bytes: out, result } = await rewrite(bytes, {
        target: { uuid: NEW, ctransid: 1 },
        map: { [second]: { uuid: other, ctransid: 2 } },
      });
      const output = await parsed(out);
      assertOnlyChanged(input, output, bytes, out, new Set(subvols.map((s) => s.index)));
      assert.deepEqual(
        result.subvolumes.map((s) => [s.path, s.to.uuid, s.to.ctransid]),
        [
          ['tiny1', NEW, 1n],
          ['tiny2', other, 2n],
        ],
      );
      // Without a map entry, the second subvolume passes unchanged.
      const { result: r2 } = await rewrite(bytes, { target: { uuid: NEW } });
      assert.equal(r2.rewritten, 1);
      assert.equal(r2.subvolumes[1]!.to.uuid, second);
    }
  });

  it('with nothing to map, or a mapping to the same identity, the stream passes unchanged', async () => {
    const bytes = fixture('incr-v1');
    assert.ok((await rewrite(bytes, {})).bytes.equals(bytes));
    const snap = (await parsed(bytes))[0]!;
    const same = {
      target: {
        uuid: uuidToString(attr(snap, Attr.UUID)),
        ctransid: readU64(attr(snap, Attr.CTRANSID)),
      },
    };
    const { bytes: out, result } = await rewrite(bytes, same);
    assert.ok(out.equals(bytes));
    assert.equal(result.rewritten, 0);
  });

  it('refuses to re-sign a corrupt command it would rewrite', async () => {
    const bytes = Buffer.from(fixture('incr-v1'));
    bytes[17 + 30]! ^= 0x04;
    const stage = uuidRewrite({ target: { uuid: NEW } });
    const { bytes: out, error } = await runThroughCatching([bytes], stage.stream);
    assert.ok(error instanceof StreamCorruptError);
    assert.equal(error.commandIndex, 0);
    assert.equal(error.offset, 17);
    assert.ok(out.length <= 17);
    await assert.rejects(stage.result, StreamCorruptError);
  });

  it('fails the stream when the learned pairs contradict the map', async () => {
    const bytes = fixture('incr-v1');
    const snap = (await parsed(bytes))[0]!;
    const old = uuidToString(attr(snap, Attr.UUID));
    const stage = uuidRewrite({
      target: { uuid: NEW },
      map: new Map([[old, { uuid: NEW_PARENT }]]),
    });
    const { error } = await runThroughCatching([bytes], stage.stream);
    assert.ok(error instanceof UsageError);
  });

  it('validates options in the factory', () => {
    assert.throws(() => uuidRewrite({ target: { uuid: 'nope' } }), UsageError);
    assert.throws(() => uuidRewrite({ parent: { uuid: NEW, ctransid: -1 } }), UsageError);
    assert.throws(() => uuidRewrite({ map: { 'not-a-uuid': { uuid: NEW } } }), UsageError);
    assert.throws(() => uuidRewrite({ maxCommandLength: 0 }), UsageError);
  });

  it('an aborted signal destroys the stage with AbortedError', async () => {
    const ac = new AbortController();
    const stage = uuidRewrite({ target: { uuid: NEW }, signal: ac.signal });
    ac.abort();
    await assert.rejects(stage.result, AbortedError);
  });
});

describe('uuidRewrite subvolumeName', () => {
  for (const name of ['full-v1', 'incr-v2']) {
    it(`renames the created subvolume of ${name} and keeps every other command`, async () => {
      const input = fixture(name);
      const { bytes: output, result } = await rewrite(input, { subvolumeName: 'snap.part' });
      const before = await parsed(input);
      const after = await parsed(output);
      assert.equal(after.length, before.length);
      const first = after.find((c) => c.cmd === Cmd.SUBVOL || c.cmd === Cmd.SNAPSHOT)!;
      assert.equal(attr(first, Attr.PATH).toString('utf8'), 'snap.part');
      assert.equal(result.rewritten, 1);
      // Every command after the renamed one is byte-identical, shifted by the length change.
      const shift = output.length - input.length;
      const firstIn = before[first.index]!;
      const tailIn = input.subarray(firstIn.offset + 10 + firstIn.length);
      assert.ok(output.subarray(firstIn.offset + 10 + firstIn.length + shift).equals(tailIn));
    });
  }

  it('rejects a name that is not one path component', () => {
    for (const bad of ['', '.', '..', 'a/b', 'a\0b']) {
      assert.throws(() => uuidRewrite({ subvolumeName: bad }), UsageError);
    }
  });
});
