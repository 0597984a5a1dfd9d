// Attribute value codecs at their edges: wrong lengths, anchors, ranges.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isUuid,
  readTimespec,
  readU64,
  uuidToString,
  writeU64,
} from '../../../../src/btrfs/send-stream/values.js';

const UUID = '11111111-2222-4333-8444-555555555555';

describe('send-stream value codecs, edges', () => {
  it('isUuid needs the whole string to be a UUID', () => {
    assert.equal(isUuid(UUID), true);
    assert.equal(isUuid(`x${UUID}`), false);
    assert.equal(isUuid(`${UUID}x`), false);
  });

  it('refuses values of the wrong length instead of reading part of them', () => {
    assert.throws(() => uuidToString(Buffer.alloc(15)), /a UUID has 16 bytes, got 15/);
    assert.throws(() => uuidToString(Buffer.alloc(17)), /a UUID has 16 bytes, got 17/);
    for (const n of [7, 9]) {
      assert.throws(() => readU64(Buffer.alloc(n)), new RegExp(`8 bytes, got ${n}`));
    }
    for (const n of [11, 13]) {
      assert.throws(() => readTimespec(Buffer.alloc(n)), new RegExp(`12 bytes, got ${n}`));
    }
  });

  it('writeU64 takes exactly 0 … 2^64 − 1, integers only', () => {
    assert.deepEqual(writeU64(0n), Buffer.alloc(8));
    assert.deepEqual(writeU64(2n ** 64n - 1n), Buffer.alloc(8, 0xff));
    for (const bad of [-1n, 2n ** 64n, -1, 1.5, Number.MAX_SAFE_INTEGER + 2]) {
      assert.throws(() => writeU64(bad), /^RangeError: not a u64/, String(bad));
    }
  });
});
