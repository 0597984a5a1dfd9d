import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../../src/errors.js';
import {
  isUuid,
  readString,
  readTimespec,
  readU64,
  uuidFromString,
  uuidToString,
  writeU64,
} from '../../../../src/btrfs/send-stream/values.js';

describe('send-stream values', () => {
  it('UUID bytes <-> 8-4-4-4-12 text, in byte order', () => {
    const bytes = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    assert.equal(uuidToString(bytes), '00112233-4455-6677-8899-aabbccddeeff');
    assert.deepEqual(uuidFromString('00112233-4455-6677-8899-AABBCCDDEEFF'), bytes);
    assert.equal(uuidToString(new Uint8Array(bytes)), '00112233-4455-6677-8899-aabbccddeeff');
    assert.ok(isUuid('00112233-4455-6677-8899-aabbccddeeff'));
  });

  it('refuses malformed UUIDs', () => {
    for (const bad of [
      '',
      'None',
      '00112233445566778899aabbccddeeff',
      '00112233-4455-6677-8899-aabbccddeef',
    ]) {
      assert.equal(isUuid(bad), false);
      assert.throws(() => uuidFromString(bad), UsageError);
    }
    assert.throws(() => uuidToString(Buffer.alloc(15)), RangeError);
  });

  it('u64 little-endian both ways, whole range', () => {
    assert.deepEqual(writeU64(0x0102030405060708n), Buffer.from('0807060504030201', 'hex'));
    assert.deepEqual(writeU64(258), Buffer.from('0201000000000000', 'hex'));
    assert.equal(readU64(Buffer.from('ffffffffffffffff', 'hex')), 0xffffffffffffffffn);
    assert.equal(readU64(writeU64(12345)), 12345n);
    assert.throws(() => writeU64(-1), RangeError);
    assert.throws(() => writeU64(1.5), RangeError);
    assert.throws(() => writeU64(2n ** 64n), RangeError);
    assert.throws(() => readU64(Buffer.alloc(4)), RangeError);
  });

  it('strings and timespecs', () => {
    assert.equal(readString(Buffer.from('dir/ä')), 'dir/ä');
    const t = Buffer.alloc(12);
    t.writeBigInt64LE(1706933106n, 0);
    t.writeUInt32LE(500000000, 8);
    assert.deepEqual(readTimespec(t), { sec: 1706933106n, nsec: 500000000 });
    assert.throws(() => readTimespec(Buffer.alloc(8)), RangeError);
  });
});
