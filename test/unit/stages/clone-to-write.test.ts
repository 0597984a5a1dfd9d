import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { StreamCorruptError } from '../../../src/errors.js';
import { Attr, Cmd } from '../../../src/btrfs/send-stream/constants.js';
import { createSendCrc } from '../../../src/btrfs/send-stream/crc.js';
import { SendStreamParser } from '../../../src/btrfs/send-stream/parser.js';
import type { CommandEvent } from '../../../src/btrfs/send-stream/types.js';
import { readU64, uuidFromString, writeU64 } from '../../../src/btrfs/send-stream/values.js';
import { cloneToWrite } from '../../../src/stages/clone-to-write.js';
import { StreamBuilder } from '../../fixtures/hostile-streams.js';
import { randomChunks, rng, runThrough, runThroughCatching } from '../../fixtures/streams/index.js';

const TARGET = '11111111-2222-4333-8444-555555555555';
const PARENT = '66666666-7777-4888-8999-aaaaaaaaaaaa';
let dir: string;
let data: Buffer;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'clone2write-'));
  data = randomBytes(200 * 1024);
  writeFileSync(join(dir, 'src'), data);
  symlinkSync(join(dir, 'src'), join(dir, 'lnk'));
  truncateSync(join(dir, 'src'), data.length);
  writeFileSync(join(dir, 'big'), '');
  truncateSync(join(dir, 'big'), 64 << 20);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A CLONE with every attribute set by hand. */
function clone(
  b: StreamBuilder,
  path: string,
  source: string,
  from: string,
  offset: number,
  len: number,
  fromOffset: number,
) {
  return b.cmd(Cmd.CLONE, [
    { type: Attr.PATH, value: Buffer.from(path) },
    { type: Attr.FILE_OFFSET, value: writeU64(offset) },
    { type: Attr.CLONE_LEN, value: writeU64(len) },
    { type: Attr.CLONE_UUID, value: uuidFromString(source) },
    { type: Attr.CLONE_CTRANSID, value: writeU64(7) },
    { type: Attr.CLONE_PATH, value: Buffer.from(from) },
    { type: Attr.CLONE_OFFSET, value: writeU64(fromOffset) },
  ]);
}

async function commands(bytes: Buffer): Promise<CommandEvent[]> {
  const p = new SendStreamParser({ crc: await createSendCrc() });
  const out = p.push(bytes).filter((e): e is CommandEvent => e.type === 'command');
  p.end();
  return out;
}

describe('cloneToWrite', () => {
  it('replaces a CLONE from the parent by WRITEs of the same bytes, leaves other clones alone', async () => {
    for (const version of [1, 2]) {
      const b = (await StreamBuilder.create(version)).snapshot('s', TARGET, PARENT).mkfile('b');
      clone(b, 'b', PARENT, 'src', 8192, 100_000, 4096);
      clone(b, 'b', TARGET, 'b', 200_000, 4096, 0);
      const input = b.end().bytes();
      const stage = cloneToWrite({ parent: PARENT, parentRoot: dir });
      const out = await runThrough(randomChunks(input, rng(version), 300), stage.stream);
      const cmds = await commands(out.bytes); // every CRC checked
      const writes = cmds.filter((c) => c.cmd === Cmd.WRITE);
      assert.equal(writes.length, Math.ceil(100_000 / (48 * 1024)));
      const attr = (c: CommandEvent, t: number) => c.attributes!.find((a) => a.type === t)!.value;
      let expect = 8192;
      for (const w of writes) {
        assert.equal(attr(w, Attr.PATH).toString(), 'b');
        assert.equal(Number(readU64(attr(w, Attr.FILE_OFFSET))), expect);
        expect += attr(w, Attr.DATA).length;
      }
      assert.ok(
        Buffer.concat(writes.map((w) => attr(w, Attr.DATA))).equals(data.subarray(4096, 104_096)),
      );
      const clones = cmds.filter((c) => c.cmd === Cmd.CLONE);
      assert.equal(clones.length, 1, 'the clone from the new subvolume itself stays');
      assert.deepEqual(await stage.result, { clones: 1, bytes: 100_000 });
    }
  });

  it('a clone past the end of the parent file copies up to its end (as the ioctl would)', async () => {
    const b = (await StreamBuilder.create()).snapshot('s', TARGET, PARENT).mkfile('b');
    clone(b, 'b', PARENT, 'src', 0, 8192, data.length - 1000);
    const out = await runThrough(
      [b.end().bytes()],
      cloneToWrite({ parent: PARENT, parentRoot: dir }).stream,
    );
    const w = (await commands(out.bytes)).filter((c) => c.cmd === Cmd.WRITE);
    assert.equal(w.length, 1);
    assert.ok(
      w[0]!
        .attributes!.find((a) => a.type === Attr.DATA)!
        .value.equals(data.subarray(data.length - 1000)),
    );
  });

  it('refuses a CLONE failing its CRC, a missing source, and a symlink as source', async () => {
    const b = (await StreamBuilder.create()).snapshot('s', TARGET, PARENT);
    const good = b.bytes().length;
    clone(b, 'b', PARENT, 'src', 0, 4096, 0);
    const bytes = b.end().bytes();
    bytes.writeUInt8(bytes.readUInt8(good + 20) ^ 1, good + 20);
    const bad = await runThroughCatching(
      [bytes],
      cloneToWrite({ parent: PARENT, parentRoot: dir }).stream,
    );
    assert.ok(
      bad.error instanceof StreamCorruptError && /CRC/.test(bad.error.message),
      String(bad.error),
    );
    for (const source of ['missing', 'lnk']) {
      const s = (await StreamBuilder.create()).snapshot('s', TARGET, PARENT);
      clone(s, 'b', PARENT, source, 0, 4096, 0);
      const r = await runThroughCatching(
        [s.end().bytes()],
        cloneToWrite({ parent: PARENT, parentRoot: dir }).stream,
      );
      assert.ok(r.error instanceof StreamCorruptError, `${source}: ${String(r.error)}`);
    }
  });

  it('holds a few WRITEs at most, however long the clone, when the consumer is slow', async () => {
    const b = (await StreamBuilder.create()).snapshot('s', TARGET, PARENT).mkfile('b');
    clone(b, 'b', PARENT, 'big', 0, 64 << 20, 0);
    const stage = cloneToWrite({ parent: PARENT, parentRoot: dir });
    let maxBuffered = 0;
    let received = 0;
    const sink = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _e, cb) {
        received += chunk.length;
        maxBuffered = Math.max(maxBuffered, stage.stream.readableLength);
        setImmediate(cb);
      },
    });
    await pipeline(Readable.from([b.end().bytes()]), stage.stream, sink);
    assert.ok(received > 64 << 20);
    assert.ok(maxBuffered < 1 << 20, `readable side held ${maxBuffered} bytes`);
  });
});
