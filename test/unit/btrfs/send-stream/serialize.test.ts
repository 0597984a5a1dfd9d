import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Attr, Cmd } from '../../../../src/btrfs/send-stream/constants.js';
import { createSendCrc } from '../../../../src/btrfs/send-stream/crc.js';
import type { SendCrc } from '../../../../src/btrfs/send-stream/crc.js';
import { SendStreamParser } from '../../../../src/btrfs/send-stream/parser.js';
import {
  serializeCommand,
  serializeStreamHeader,
} from '../../../../src/btrfs/send-stream/serialize.js';
import { FIXTURES, fixture } from '../../../fixtures/streams/index.js';

let crc: SendCrc;
before(async () => {
  crc = await createSendCrc();
});

describe('serializeCommand', () => {
  for (const name of FIXTURES) {
    it(`${name}: re-serializing every parsed command gives back the recorded bytes`, async () => {
      const bytes = fixture(name);
      const parser = new SendStreamParser({ crc: await createSendCrc() });
      const rebuilt: Buffer[] = [];
      for (const e of parser.push(bytes)) {
        if (e.type === 'header') rebuilt.push(serializeStreamHeader(e.version));
        else rebuilt.push(serializeCommand(e.cmd, e.attributes!, e.version, crc));
      }
      parser.end();
      assert.ok(Buffer.concat(rebuilt).equals(bytes));
    });
  }

  it('writes v2 DATA with its type only, and refuses it anywhere but last', () => {
    const data = { type: Attr.DATA, value: Buffer.from('xyz') };
    const path = { type: Attr.PATH, value: Buffer.from('f') };
    const v2 = serializeCommand(Cmd.WRITE, [path, data], 2, crc);
    assert.equal(v2.readUInt32LE(0), 4 + 1 + 2 + 3);
    assert.deepEqual([...v2.subarray(15)], [19, 0, 0x78, 0x79, 0x7a]);
    const v1 = serializeCommand(Cmd.WRITE, [path, data], 1, crc);
    assert.deepEqual([...v1.subarray(15)], [19, 0, 3, 0, 0x78, 0x79, 0x7a]);
    assert.throws(() => serializeCommand(Cmd.WRITE, [data, path], 2, crc), RangeError);
    serializeCommand(Cmd.WRITE, [data, path], 1, crc);
  });

  it('refuses a TLV value over 65535 bytes (except v2 DATA)', () => {
    const big = { type: Attr.XATTR_DATA, value: Buffer.alloc(65536) };
    assert.throws(() => serializeCommand(Cmd.SET_XATTR, [big], 2, crc), RangeError);
    const data = { type: Attr.DATA, value: Buffer.alloc(200000) };
    assert.equal(serializeCommand(Cmd.WRITE, [data], 2, crc).length, 10 + 2 + 200000);
  });
});

describe('serializeStreamHeader', () => {
  it('writes magic and le32 version; refuses unknown versions', () => {
    assert.deepEqual(serializeStreamHeader(2), Buffer.from('btrfs-stream\0\x02\0\0\0', 'latin1'));
    assert.throws(() => serializeStreamHeader(0), RangeError);
    assert.throws(() => serializeStreamHeader(4), RangeError);
  });
});
