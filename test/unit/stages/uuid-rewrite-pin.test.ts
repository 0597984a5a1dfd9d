// uuidRewrite beyond the kernel's fixtures: pinning the parent to the exact
// copy (pinParent), streams whose UUID fields are missing or short, options
// that contradict each other, and the no-op cases that must leave bytes alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamCorruptError, UsageError } from '../../../src/errors.js';
import { Attr, Cmd } from '../../../src/btrfs/send-stream/constants.js';
import { createSendCrc } from '../../../src/btrfs/send-stream/crc.js';
import { SendStreamParser } from '../../../src/btrfs/send-stream/parser.js';
import type { CommandEvent } from '../../../src/btrfs/send-stream/types.js';
import { readU64, uuidFromString, uuidToString } from '../../../src/btrfs/send-stream/values.js';
import { uuidRewrite } from '../../../src/stages/uuid-rewrite.js';
import type { UuidRewriteOptions } from '../../../src/stages/uuid-rewrite.js';
import { StreamBuilder } from '../../fixtures/hostile-streams.js';
import { runThrough, runThroughCatching } from '../../fixtures/streams/index.js';

const TO = '11111111-2222-3333-4444-555555555555';
const FROM = '99999999-8888-7777-6666-555555555555';
const NEW = 'aaaaaaaa-0000-0000-0000-000000000001';
const NEW_PARENT = 'aaaaaaaa-0000-0000-0000-000000000002';
const PIN = 'bbbbbbbb-0000-0000-0000-000000000003';

async function parsed(bytes: Buffer): Promise<CommandEvent[]> {
  const p = new SendStreamParser({ crc: await createSendCrc() });
  const out = p.push(bytes).filter((e): e is CommandEvent => e.type === 'command');
  p.end();
  return out;
}

const uuidOf = (c: CommandEvent, type: number) =>
  uuidToString(c.attributes!.find((a) => a.type === type)!.value);
const u64Of = (c: CommandEvent, type: number) =>
  readU64(c.attributes!.find((a) => a.type === type)!.value);

async function rewrite(bytes: Buffer, opts: UuidRewriteOptions) {
  const stage = uuidRewrite(opts);
  const { bytes: out } = await runThrough([bytes], stage.stream);
  return { out, result: await stage.result, commands: await parsed(out) };
}

/** An incremental: SNAPSHOT of TO on FROM, a CLONE from FROM, a write. */
async function incremental(): Promise<Buffer> {
  return (await StreamBuilder.create())
    .snapshot('snap', TO, FROM, 20, 10)
    .clone('f', FROM, 'g', 4096, 0, 10)
    .write('f', 'abc')
    .end()
    .bytes();
}

describe('uuidRewrite pinParent', () => {
  it("writes the pinned UUID as the SNAPSHOT's parent only; CLONEs keep the mapped parent", async () => {
    const { out, result, commands } = await rewrite(await incremental(), {
      target: { uuid: NEW },
      parent: { uuid: NEW_PARENT, ctransid: 30 },
      pinParent: PIN,
    });
    const [snap, clone, write] = commands;
    assert.equal(uuidOf(snap!, Attr.UUID), NEW);
    assert.equal(uuidOf(snap!, Attr.CLONE_UUID), PIN);
    assert.equal(u64Of(snap!, Attr.CLONE_CTRANSID), 30n);
    assert.equal(uuidOf(clone!, Attr.CLONE_UUID), NEW_PARENT);
    assert.equal(u64Of(clone!, Attr.CLONE_CTRANSID), 30n);
    assert.equal(write!.cmd, Cmd.WRITE);
    assert.equal(result.rewritten, 2);
    assert.equal(result.clonesRewritten, 1);
    assert.equal(result.bytes, out.length);
    assert.deepEqual(result.subvolumes[0]!.parent, {
      from: { uuid: FROM, ctransid: 10n },
      to: { uuid: PIN, ctransid: 30n },
    });
  });

  it('pins alone (no mapping): the SNAPSHOT changes, the CLONE passes byte for byte', async () => {
    const input = await incremental();
    const before = await parsed(input);
    const { out, result, commands } = await rewrite(input, { pinParent: PIN });
    assert.equal(uuidOf(commands[0]!, Attr.CLONE_UUID), PIN);
    assert.equal(uuidOf(commands[0]!, Attr.UUID), TO);
    assert.equal(result.rewritten, 1);
    assert.equal(result.clonesRewritten, 0);
    const c = before[1]!;
    assert.ok(
      out
        .subarray(c.offset, c.offset + 10 + c.length)
        .equals(input.subarray(c.offset, c.offset + 10 + c.length)),
    );
  });

  it('a stream already naming the pinned parent, or a full stream, passes unchanged', async () => {
    const input = await incremental();
    const same = await rewrite(input, { pinParent: FROM });
    assert.ok(same.out.equals(input));
    assert.equal(same.result.rewritten, 0);
    const full = (await StreamBuilder.create()).subvol('s', TO).write('s/x', 'y').end().bytes();
    const r = await rewrite(full, { pinParent: PIN });
    assert.ok(r.out.equals(full));
    assert.equal(r.result.rewritten, 0);
    assert.equal(r.result.subvolumes[0]!.parent, undefined);
  });

  it('refuses a pinParent that is not a UUID', () => {
    assert.throws(() => uuidRewrite({ pinParent: 'not-a-uuid' }), UsageError);
    assert.doesNotThrow(() => uuidRewrite({ pinParent: PIN.toUpperCase() }));
  });
});

describe('uuidRewrite on commands without usable UUIDs', () => {
  const cases: [string, (b: StreamBuilder) => StreamBuilder][] = [
    [
      'a SUBVOL without UUID',
      (b) => b.cmd(Cmd.SUBVOL, [{ type: Attr.PATH, value: Buffer.from('s') }]),
    ],
    [
      'a SUBVOL with a 15-byte UUID',
      (b) =>
        b.cmd(Cmd.SUBVOL, [
          { type: Attr.PATH, value: Buffer.from('s') },
          { type: Attr.UUID, value: Buffer.alloc(15, 1) },
        ]),
    ],
    [
      'a SNAPSHOT without parent UUID',
      (b) =>
        b.cmd(Cmd.SNAPSHOT, [
          { type: Attr.PATH, value: Buffer.from('s') },
          { type: Attr.UUID, value: uuidFromString(TO) },
        ]),
    ],
    [
      'a SNAPSHOT with a 17-byte parent UUID',
      (b) =>
        b.cmd(Cmd.SNAPSHOT, [
          { type: Attr.PATH, value: Buffer.from('s') },
          { type: Attr.UUID, value: uuidFromString(TO) },
          { type: Attr.CLONE_UUID, value: Buffer.alloc(17, 1) },
        ]),
    ],
    [
      'a CLONE without source UUID',
      (b) =>
        b.subvol('s', TO).cmd(Cmd.CLONE, [
          { type: Attr.PATH, value: Buffer.from('f') },
          { type: Attr.CLONE_PATH, value: Buffer.from('g') },
        ]),
    ],
  ];
  for (const [what, build] of cases) {
    it(`fails ${what} with StreamCorruptError at that command`, async () => {
      const bytes = build(await StreamBuilder.create())
        .end()
        .bytes();
      const commands = await parsed(bytes);
      // The bad command is the last one before END.
      const bad = commands.at(-2)!;
      const stage = uuidRewrite({ target: { uuid: NEW } });
      const { error } = await runThroughCatching([bytes], stage.stream);
      assert.ok(error instanceof StreamCorruptError, String(error));
      assert.equal(error.commandIndex, bad.index);
      assert.equal(error.offset, bad.offset);
    });
  }
});

describe('uuidRewrite mapping rules', () => {
  it('a map entry for the stream UUID agrees when it names the same UUID and no other ctransid', async () => {
    const input = await incremental();
    for (const entry of [{ uuid: NEW }, { uuid: NEW, ctransid: 7 }]) {
      const { commands } = await rewrite(input, {
        target: { uuid: NEW, ctransid: 7 },
        map: new Map([[TO.toUpperCase(), entry]]),
      });
      assert.equal(uuidOf(commands[0]!, Attr.UUID), NEW);
      assert.equal(u64Of(commands[0]!, Attr.CTRANSID), 7n);
    }
  });

  it('fails when the map gives the stream UUID another ctransid, or the parent another UUID', async () => {
    const input = await incremental();
    const contradictions: UuidRewriteOptions[] = [
      { target: { uuid: NEW, ctransid: 7 }, map: { [TO]: { uuid: NEW, ctransid: 8 } } },
      { parent: { uuid: NEW_PARENT }, map: { [FROM]: { uuid: NEW } } },
    ];
    for (const opts of contradictions) {
      const stage = uuidRewrite(opts);
      const { error } = await runThroughCatching([input], stage.stream);
      assert.ok(error instanceof UsageError, `${JSON.stringify(opts)}: ${String(error)}`);
    }
  });

  it('maps CLONE sources through `map` alone (no target or parent)', async () => {
    const { commands, result } = await rewrite(await incremental(), {
      map: { [FROM]: { uuid: NEW_PARENT, ctransid: 44 } },
    });
    for (const c of commands.slice(0, 2)) {
      assert.equal(uuidOf(c, Attr.CLONE_UUID), NEW_PARENT);
      assert.equal(u64Of(c, Attr.CLONE_CTRANSID), 44n);
    }
    assert.equal(uuidOf(commands[0]!, Attr.UUID), TO);
    assert.equal(result.rewritten, 2);
  });

  it('a subvolumeName equal to the stream name changes nothing', async () => {
    const input = await incremental();
    const { out, result } = await rewrite(input, { subvolumeName: 'snap' });
    assert.ok(out.equals(input));
    assert.equal(result.rewritten, 0);
  });

  it('refuses identities that are not objects with a UUID (null/undefined: not given), or a ctransid out of range', () => {
    const bad: unknown[] = [
      'x',
      { uuid: 5 },
      { uuid: NEW, ctransid: 1.5 },
      { uuid: NEW, ctransid: 2n ** 64n },
    ];
    for (const target of bad) {
      assert.throws(
        () => uuidRewrite({ target: target as UuidRewriteOptions['target'] }),
        UsageError,
        JSON.stringify(target, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
      );
    }
    // A map entry is checked the same way; null there is no identity at all.
    assert.throws(
      () => uuidRewrite({ map: { [TO]: null as unknown as { uuid: string } } }),
      UsageError,
    );
    assert.doesNotThrow(() => uuidRewrite({ target: { uuid: NEW, ctransid: 2n ** 64n - 1n } }));
  });
});

describe('uuidRewrite on hand-made commands', () => {
  it('a SUBVOL without CTRANSID is described with generation 0 and keeps having none', async () => {
    const bytes = (await StreamBuilder.create())
      .cmd(Cmd.SUBVOL, [
        { type: Attr.PATH, value: Buffer.from('s') },
        { type: Attr.UUID, value: uuidFromString(TO) },
      ])
      .end()
      .bytes();
    const { result, commands } = await rewrite(bytes, { target: { uuid: NEW, ctransid: 9 } });
    assert.equal(uuidOf(commands[0]!, Attr.UUID), NEW);
    assert.equal(commands[0]!.attributes!.length, 2, 'no CTRANSID added');
    assert.deepEqual(result.subvolumes[0], {
      index: 0,
      path: 's',
      from: { uuid: TO, ctransid: 0n },
      to: { uuid: NEW, ctransid: 0n },
    });
  });

  it('the name is compared with the PATH attribute wherever it stands, and absent stays absent', async () => {
    const uuidFirst = (await StreamBuilder.create())
      .cmd(Cmd.SUBVOL, [
        { type: Attr.UUID, value: uuidFromString(TO) },
        { type: Attr.CTRANSID, value: Buffer.alloc(8) },
        { type: Attr.PATH, value: Buffer.from('snap.part') },
      ])
      .end()
      .bytes();
    const same = await rewrite(uuidFirst, { subvolumeName: 'snap.part' });
    assert.ok(same.out.equals(uuidFirst));
    assert.equal(same.result.rewritten, 0);
    const renamed = await rewrite(uuidFirst, { subvolumeName: 'other' });
    assert.equal(renamed.result.rewritten, 1);
    assert.equal(renamed.result.subvolumes[0]!.path, 'snap.part');
    const noPath = (await StreamBuilder.create())
      .cmd(Cmd.SUBVOL, [{ type: Attr.UUID, value: uuidFromString(TO) }])
      .end()
      .bytes();
    const r = await rewrite(noPath, { subvolumeName: 'x' });
    assert.ok(r.out.equals(noPath));
    assert.equal(r.result.subvolumes[0]!.path, '');
  });

  it('`map` alone also maps the SNAPSHOT itself', async () => {
    const { commands } = await rewrite(await incremental(), { map: { [TO]: { uuid: NEW } } });
    assert.equal(uuidOf(commands[0]!, Attr.UUID), NEW);
    assert.equal(uuidOf(commands[0]!, Attr.CLONE_UUID), FROM);
  });

  it('maxCommandLength bounds the commands of a v2 stream', async () => {
    const bytes = (await StreamBuilder.create(2))
      .subvol('s', TO)
      .write('s/f', Buffer.alloc(300, 7))
      .end()
      .bytes();
    const commands = await parsed(bytes);
    const stage = uuidRewrite({ maxCommandLength: 200 });
    const { error } = await runThroughCatching([bytes], stage.stream);
    assert.ok(error instanceof StreamCorruptError, String(error));
    assert.equal(error.commandIndex, 1);
    assert.equal(error.offset, commands[1]!.offset);
    const roomy = await rewrite(bytes, { maxCommandLength: 400 });
    assert.ok(roomy.out.equals(bytes));
  });

  it('passes on the bytes of a command it never changes without waiting for its end', async () => {
    const bytes = (await StreamBuilder.create())
      .subvol('s', TO)
      .write('s/f', Buffer.alloc(5000, 1))
      .end()
      .bytes();
    const write = (await parsed(bytes))[1]!;
    const cut = write.offset + 10 + 100; // inside the WRITE's payload
    const stage = uuidRewrite({ target: { uuid: NEW } });
    const out: Buffer[] = [];
    stage.stream.on('data', (c: Buffer) => out.push(c));
    // The write's callback runs once the stage has taken the chunk; data pushed
    // by then is emitted by the next turn of the event loop.
    await new Promise((resolve) => stage.stream.write(bytes.subarray(0, cut), resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // Everything written so far came out (the rewritten SUBVOL, then the WRITE's first
    // bytes), before the rest of the stream is written.
    assert.equal(Buffer.concat(out).length, cut);
    stage.stream.end(bytes.subarray(cut));
    await stage.result;
    assert.equal(Buffer.concat(out).length, bytes.length);
  });
});
