// ByteQueue at its chunk boundaries and over long streams: what `take` hands
// out is exactly the queued bytes (no empty slices, however the chunks were
// cut), and the queue's own bookkeeping does not grow with the stream's length
// when the queue never empties.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ByteQueue } from '../../../../src/btrfs/send-stream/byte-queue.js';

describe('ByteQueue boundaries', () => {
  it('an empty chunk adds nothing: take returns only the non-empty chunks', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('abc'));
    q.push(Buffer.alloc(0));
    q.push(Buffer.from('de'));
    q.push(Buffer.alloc(0));
    assert.equal(q.end, 5);
    assert.deepEqual(q.take(5).map(String), ['abc', 'de']);
    assert.equal(q.size, 0);
  });

  it('a take that ends exactly on a chunk boundary leaves no empty slice for the next take', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('abcdef'));
    q.push(Buffer.from('ghij'));
    assert.deepEqual(q.take(6).map(String), ['abcdef']);
    assert.deepEqual(q.take(10).map(String), ['ghij']);
    // The same when the queue ran empty in between.
    q.push(Buffer.from('kl'));
    assert.deepEqual(q.take(12).map(String), ['kl']);
    q.push(Buffer.from('mn'));
    assert.deepEqual(q.take(14).map(String), ['mn']);
    q.drop(14);
    assert.equal(q.start, 14);
  });
});

describe('ByteQueue bookkeeping', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heapAfterGc = async () => {
    // WeakRef and FinalizationRegistry targets stay alive until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    return process.memoryUsage().heapUsed;
  };

  // One slot kept per released chunk would be 8 bytes × 1 M = 8 MB or more.
  for (const held of [1, 1000]) {
    it(`stays bounded over a million chunks taken one by one behind ${held} held one(s)`, async () => {
      const q = new ByteQueue();
      const byte = Buffer.from('x');
      // The queue never empties: `held` chunks stay queued throughout.
      for (let i = 0; i < held; i++) q.push(byte);
      const before = await heapAfterGc();
      const rounds = 1_000_000;
      for (let i = 0; i < rounds; i++) {
        q.push(byte);
        q.drop(q.start + 1);
      }
      const grown = (await heapAfterGc()) - before;
      assert.ok(grown < 3 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB`);
      assert.equal(q.size, held);
      assert.equal(q.start, rounds);
    });
  }
});
