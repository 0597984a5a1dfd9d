import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteQueue } from '../../../../src/btrfs/send-stream/byte-queue.js';

describe('ByteQueue', () => {
  it('takes and drops by absolute offset, returning views of the chunks', () => {
    const q = new ByteQueue();
    const a = Buffer.from('abcdef');
    const b = Buffer.from('ghij');
    q.push(a);
    q.push(Buffer.alloc(0));
    q.push(b);
    assert.equal(q.end, 10);
    const first = q.take(4);
    assert.deepEqual(first.map(String), ['abcd']);
    assert.equal(first[0]!.buffer, a.buffer);
    q.drop(7);
    assert.equal(q.start, 7);
    assert.equal(q.size, 3);
    assert.deepEqual(q.take(10).map(String), ['hij']);
    assert.deepEqual(q.take(10), []);
    assert.throws(() => q.take(11), RangeError);
    assert.throws(() => q.take(6), RangeError);
  });
});
