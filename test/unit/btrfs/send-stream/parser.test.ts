import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { StreamCorruptError } from '../../../../src/errors.js';
import { Attr, Cmd, commandName } from '../../../../src/btrfs/send-stream/constants.js';
import { createSendCrc } from '../../../../src/btrfs/send-stream/crc.js';
import type { SendCrc } from '../../../../src/btrfs/send-stream/crc.js';
import { describeEvent } from '../../../../src/btrfs/send-stream/describe.js';
import { SendStreamParser, parseAttributes } from '../../../../src/btrfs/send-stream/parser.js';
import type { SendStreamParserOptions } from '../../../../src/btrfs/send-stream/parser.js';
import {
  serializeCommand,
  serializeStreamHeader,
} from '../../../../src/btrfs/send-stream/serialize.js';
import type { CommandEvent, SendStreamEvent } from '../../../../src/btrfs/send-stream/types.js';
import { readU64, uuidToString } from '../../../../src/btrfs/send-stream/values.js';
import {
  FIXTURES,
  byteChunks,
  dump,
  fixture,
  golden,
  randomChunks,
  rng,
} from '../../../fixtures/streams/index.js';

let crc: SendCrc;
before(async () => {
  crc = await createSendCrc();
});

async function parse(
  chunks: readonly Buffer[],
  opts: SendStreamParserOptions = {},
): Promise<SendStreamEvent[]> {
  const parser = new SendStreamParser({ crc: await createSendCrc(), ...opts });
  const events: SendStreamEvent[] = [];
  for (const c of chunks) events.push(...parser.push(c));
  parser.end();
  return events;
}

function commands(events: SendStreamEvent[]): CommandEvent[] {
  return events.filter((e): e is CommandEvent => e.type === 'command');
}

async function parseError(
  bytes: Buffer,
  opts: SendStreamParserOptions = {},
): Promise<StreamCorruptError> {
  try {
    await parse([bytes], opts);
  } catch (err) {
    assert.ok(err instanceof StreamCorruptError, `expected StreamCorruptError, got ${String(err)}`);
    return err;
  }
  assert.fail('stream was accepted');
}

/** A small v1 stream built by hand: SUBVOL, WRITE, END. */
function tinyStream(version = 1): Buffer {
  const uuid = Buffer.alloc(16, 0xab);
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  return Buffer.concat([
    serializeStreamHeader(version),
    serializeCommand(
      Cmd.SUBVOL,
      [
        { type: Attr.PATH, value: Buffer.from('vol') },
        { type: Attr.UUID, value: uuid },
        { type: Attr.CTRANSID, value: u64(9) },
      ],
      version,
      crc,
    ),
    serializeCommand(
      Cmd.WRITE,
      [
        { type: Attr.PATH, value: Buffer.from('file') },
        { type: Attr.FILE_OFFSET, value: u64(0) },
        { type: Attr.DATA, value: Buffer.from('hello world') },
      ],
      version,
      crc,
    ),
    serializeCommand(Cmd.END, [], version, crc),
  ]);
}

describe('SendStreamParser on recorded streams', () => {
  for (const name of FIXTURES) {
    it(`${name}: matches its golden JSON`, async () => {
      const bytes = fixture(name);
      const g = golden(name);
      assert.equal(g.bytes, bytes.length);
      const events = await parse([bytes]);
      assert.deepEqual(events.map(describeEvent), g.events);
    });

    it(`${name}: agrees with btrfs receive --dump`, async () => {
      const cmds = commands(await parse([fixture(name)]));
      // --dump prints every command but END, and stops at the first END of
      // concatenated streams.
      const firstEnd = cmds.findIndex((c) => c.cmd === Cmd.END);
      const ours = cmds.slice(0, firstEnd).filter((c) => c.cmd !== Cmd.END);
      const theirs = dump(name);
      assert.deepEqual(
        ours.map((c) => commandName(c.cmd)),
        theirs.map((d) => d.name),
      );
      ours.forEach((c, i) => {
        const d = theirs[i]!;
        const attr = (t: number) => c.attributes!.find((a) => a.type === t)?.value;
        const u64 = (t: number) => readU64(attr(t)!).toString();
        if (c.cmd === Cmd.SUBVOL || c.cmd === Cmd.SNAPSHOT) {
          assert.equal(d.fields.uuid, uuidToString(attr(Attr.UUID)!));
          assert.equal(d.fields.transid, u64(Attr.CTRANSID));
        }
        if (c.cmd === Cmd.SNAPSHOT) {
          assert.equal(d.fields.parent_uuid, uuidToString(attr(Attr.CLONE_UUID)!));
          assert.equal(d.fields.parent_transid, u64(Attr.CLONE_CTRANSID));
        }
        if (c.cmd === Cmd.WRITE || c.cmd === Cmd.ENCODED_WRITE) {
          assert.equal(d.fields.offset, u64(Attr.FILE_OFFSET));
          assert.equal(d.fields.len, String(attr(Attr.DATA)!.length));
        }
        if (c.cmd === Cmd.UPDATE_EXTENT) {
          assert.equal(d.fields.offset, u64(Attr.FILE_OFFSET));
          assert.equal(d.fields.len, u64(Attr.SIZE));
        }
        if (c.cmd === Cmd.CLONE) {
          assert.equal(d.fields.offset, u64(Attr.FILE_OFFSET));
          assert.equal(d.fields.len, u64(Attr.CLONE_LEN));
          assert.equal(d.fields.clone_offset, u64(Attr.CLONE_OFFSET));
        }
        if (c.cmd === Cmd.TRUNCATE) assert.equal(d.fields.size, u64(Attr.SIZE));
      });
    });

    it(`${name}: same events byte by byte and in 30 random chunkings`, async () => {
      const bytes = fixture(name);
      const expected = (await parse([bytes])).map(describeEvent);
      assert.deepEqual((await parse(byteChunks(bytes))).map(describeEvent), expected);
      const random = rng(name.length * 101);
      for (let i = 0; i < 30; i++) {
        const max = [3, 17, 100, 4096, 70000][i % 5]!;
        assert.deepEqual(
          (await parse(randomChunks(bytes, random, max))).map(describeEvent),
          expected,
        );
      }
    });
  }

  it('reads concatenated streams: two headers, two ENDs', async () => {
    const events = await parse([fixture('multi-v1')]);
    assert.equal(events.filter((e) => e.type === 'header').length, 2);
    assert.equal(commands(events).filter((c) => c.cmd === Cmd.END).length, 2);
  });

  it('reads v2 DATA to the end of the command, v1 DATA by its length', async () => {
    for (const version of [1, 2]) {
      const cmds = commands(await parse([tinyStream(version)]));
      const data = cmds[1]!.attributes!.find((a) => a.type === Attr.DATA)!;
      assert.equal(data.value.toString(), 'hello world');
      assert.equal(cmds[1]!.length, 4 + 4 + 4 + 8 + (version === 1 ? 4 : 2) + 11);
    }
  });

  it('hands out payloads as views of the chunk when a command lies in one chunk', async () => {
    const bytes = fixture('full-v1');
    const events = commands(await parse([bytes]));
    const write = events.find((e) => e.cmd === Cmd.WRITE && e.length > 40000)!;
    assert.equal(write.payload!.buffer, bytes.buffer);
    assert.equal(write.payload!.byteOffset, bytes.byteOffset + write.offset + 10);
  });

  it('collects only what `collect` selects, and still checks every CRC', async () => {
    const bytes = fixture('incr-v1');
    const events = commands(await parse([bytes], { collect: (c) => c === Cmd.CLONE }));
    assert.ok(events.every((e) => (e.cmd === Cmd.CLONE) === (e.attributes !== undefined)));
    const flipped = Buffer.from(bytes);
    const write = events.find((e) => e.cmd === Cmd.WRITE)!;
    flipped[write.offset + 50]! ^= 1;
    const err = await parseError(flipped, { collect: () => false });
    assert.equal(err.commandIndex, write.index);
  });

  it('with verify "collected", checks the CRC of collected commands only', async () => {
    const bytes = Buffer.from(fixture('incr-v1'));
    const events = commands(await parse([bytes]));
    const write = events.find((e) => e.cmd === Cmd.WRITE)!;
    bytes[write.offset + 50]! ^= 1;
    await parse([bytes], { verify: 'collected', collect: (c) => c === Cmd.CLONE });
    const clone = events.find((e) => e.cmd === Cmd.CLONE)!;
    bytes[clone.offset + 20]! ^= 1;
    const err = await parseError(bytes, { verify: 'collected', collect: (c) => c === Cmd.CLONE });
    assert.equal(err.commandIndex, clone.index);
    assert.equal(err.offset, clone.offset);
  });

  it('needs no CRC engine with verify "none"', () => {
    assert.throws(() => new SendStreamParser({}), TypeError);
    const p = new SendStreamParser({ verify: 'none' });
    assert.equal(p.push(tinyStream()).length, 4);
    p.end();
  });

  it('exposes its position: offset, boundary, pendingCommand, atEnd', async () => {
    const bytes = tinyStream();
    const p = new SendStreamParser({ crc: await createSendCrc() });
    p.push(bytes.subarray(0, 10));
    assert.equal(p.boundary, 0);
    assert.equal(p.pendingCommand, undefined);
    p.push(bytes.subarray(10, 17 + 4));
    assert.equal(p.offset, 21);
    assert.equal(p.boundary, 17);
    assert.equal(p.pendingCommand, undefined);
    p.push(bytes.subarray(21, 30));
    assert.equal(p.pendingCommand, Cmd.SUBVOL);
    p.push(bytes.subarray(30));
    assert.equal(p.boundary, bytes.length);
    assert.equal(p.atEnd, true);
    assert.equal(p.commands, 3);
    assert.equal(p.version, 1);
  });
});

describe('SendStreamParser rejects corrupt input with StreamCorruptError', () => {
  it('bad magic, at once and with the header offset', async () => {
    const bytes = Buffer.from(tinyStream());
    bytes[3] = 0x41;
    const p = new SendStreamParser({ crc: await createSendCrc() });
    assert.throws(
      () => p.push(bytes.subarray(0, 4)),
      (e: unknown) => {
        assert.ok(e instanceof StreamCorruptError);
        assert.equal(e.commandIndex, -1);
        assert.equal(e.offset, 0);
        assert.match(e.message, /magic/);
        return true;
      },
    );
    // A failed parser stays failed.
    assert.throws(() => p.push(Buffer.alloc(1)), StreamCorruptError);
    assert.throws(() => p.end(), StreamCorruptError);
  });

  it('unknown versions: 0, 4 and above; 3 only up to maxVersion', async () => {
    for (const v of [0, 4, 5, 256, 0x01000001]) {
      const bytes = Buffer.from(tinyStream());
      bytes.writeUInt32LE(v, 13);
      const err = await parseError(bytes);
      assert.match(err.message, new RegExp(`version ${v}`));
    }
    const v3 = Buffer.from(tinyStream(2));
    v3.writeUInt32LE(3, 13);
    await parse([v3]);
    const err = await parseError(v3, { maxVersion: 2 });
    assert.equal(err.commandIndex, -1);
  });

  it('a flipped CRC bit, naming the command index and offset', async () => {
    const bytes = Buffer.from(tinyStream());
    const writeAt = 17 + 10 + bytes.readUInt32LE(17);
    bytes[writeAt + 7]! ^= 0x10;
    const err = await parseError(bytes);
    assert.equal(err.commandIndex, 1);
    assert.equal(err.offset, writeAt);
    assert.match(err.message, /CRC/);
  });

  it('a command number that the version does not know', async () => {
    const bytes = Buffer.from(tinyStream());
    bytes.writeUInt16LE(Cmd.FALLOCATE, 17 + 4);
    const err = await parseError(bytes);
    assert.equal(err.commandIndex, 0);
    assert.match(err.message, /unknown command number 23/);
    bytes.writeUInt16LE(0, 17 + 4);
    await parseError(bytes);
  });

  it('a length beyond the v1 64 KiB limit or the v2 cap, before buffering it', async () => {
    const v1 = Buffer.from(tinyStream());
    v1.writeUInt32LE(65536 - 10 + 1, 17);
    assert.match((await parseError(v1)).message, /over the 65526-byte limit/);
    const v2 = Buffer.from(tinyStream(2));
    v2.writeUInt32LE(0xfffffff0, 17);
    assert.match((await parseError(v2)).message, /over the 16777216-byte limit/);
    assert.match(
      (await parseError(Buffer.from(v2), { maxCommandLength: 1000 })).message,
      /1000-byte limit/,
    );
  });

  it('allocates nothing from a length field: a short stream claiming a 15 MiB SUBVOL holds only what arrived', async () => {
    const header = Buffer.alloc(10);
    header.writeUInt32LE(15 * 1024 * 1024, 0);
    header.writeUInt16LE(Cmd.SUBVOL, 4);
    const stream = Buffer.concat([serializeStreamHeader(2), header, Buffer.alloc(200, 1)]);
    const parser = new SendStreamParser({ crc: await createSendCrc() });
    const before = process.memoryUsage().arrayBuffers;
    const held: SendStreamParser[] = [];
    for (let i = 0; i < 20; i++) {
      const p = new SendStreamParser({ crc: await createSendCrc() });
      assert.deepEqual(commands(p.push(Buffer.from(stream))), []);
      held.push(p);
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 4 * 1024 * 1024, `20 parsers grew array buffers by ${grown} bytes`);
    assert.equal(held.length, 20);
    parser.push(stream);
    assert.throws(() => parser.end(), /inside command 0 \(subvol\)/);
  });

  it('truncation anywhere: inside the header, a command header, a payload, or before END', async () => {
    const bytes = fixture('incr-v1');
    const cmds = commands(await parse([bytes]));
    const cuts = [0, 5, 16, 17, 20, 40, bytes.length - 10, bytes.length - 1];
    for (const c of cmds)
      cuts.push(c.offset, c.offset + 3, c.offset + 10 + Math.floor(c.length / 2));
    for (const cut of cuts.filter((c) => c < bytes.length)) {
      const err = await parseError(bytes.subarray(0, cut));
      const inCommand = cmds.find((c) => c.offset <= cut && cut < c.offset + 10 + c.length);
      if (cut < 17) assert.equal(err.commandIndex, -1, `cut ${cut}`);
      else if (inCommand && cut > inCommand.offset)
        assert.equal(err.offset, inCommand.offset, `cut ${cut}`);
      else assert.match(err.message, /without END/, `cut ${cut}`);
    }
  });

  it('an input ending without END is accepted only with requireEnd false', async () => {
    const bytes = tinyStream();
    const noEnd = bytes.subarray(0, bytes.length - 10);
    await parseError(noEnd);
    await parse([noEnd], { requireEnd: false });
  });

  it('trailing bytes after END that are not a stream header', async () => {
    const bytes = tinyStream();
    for (const tail of [
      Buffer.from([0]),
      Buffer.from('garbage'),
      Buffer.from('btrfs-stream\0\x07\0\0\0'),
    ]) {
      const err = await parseError(Buffer.concat([bytes, tail]));
      assert.equal(err.offset, bytes.length);
      assert.equal(err.commandIndex, -1);
    }
    // A stream header alone after END is a truncated second stream.
    await parseError(Buffer.concat([bytes, serializeStreamHeader(1)]));
  });

  it('an empty input', async () => {
    assert.match((await parseError(Buffer.alloc(0))).message, /empty/);
  });
});

describe('parseAttributes', () => {
  it('rejects truncated and unknown attributes', () => {
    assert.throws(() => parseAttributes(Buffer.from([15]), 1), StreamCorruptError);
    assert.throws(() => parseAttributes(Buffer.from([15, 0, 5, 0, 1]), 1), /past the end/);
    assert.throws(() => parseAttributes(Buffer.from([0, 0, 0, 0]), 1), /unknown attribute type 0/);
    assert.throws(
      () => parseAttributes(Buffer.from([25, 0, 0, 0]), 1),
      /unknown attribute type 25/,
    );
    assert.deepEqual(parseAttributes(Buffer.from([25, 0, 0, 0]), 2), [
      { type: 25, value: Buffer.alloc(0) },
    ]);
  });
});
