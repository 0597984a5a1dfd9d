import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

describe('ByteQueue memory', () => {
  it('keeps no reference to a chunk once it is released, though the queue never empties', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const q = new ByteQueue();
    // Weak references to the memory itself: a slice kept anywhere pins its parent's ArrayBuffer.
    const refs: WeakRef<ArrayBufferLike>[] = [];
    for (let i = 0; i < 300; i++) {
      const chunk = Buffer.alloc(4096, i);
      refs.push(new WeakRef(chunk.buffer));
      q.push(chunk);
      // As in stream-verify: a command always runs into the next chunk.
      q.take(q.end - 10);
    }
    // WeakRef targets stay alive until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    assert.ok(alive <= 2, `${alive} of 300 released chunks still referenced`);
    assert.equal(q.size, 10);
    assert.equal(
      Buffer.concat(q.take(q.end)).toString('hex'),
      Buffer.alloc(10, 299).toString('hex'),
    );
  });
});
