import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/errors.js';
import { PartBudget } from '../../../src/streams/part-budget.js';

describe('PartBudget', () => {
  it('gives at most `limit` units, keyed by part number, and serves waiters in order', async () => {
    const b = new PartBudget(2);
    assert.equal(b.acquire(1), undefined);
    assert.equal(b.acquire(1), undefined, 'a part that holds a unit gets it again at once');
    assert.equal(b.acquire(2), undefined);
    assert.equal(b.inUse, 2);
    const order: number[] = [];
    const w3 = b.acquire(3)!.then(() => order.push(3));
    const w4 = b.acquire(4)!.then(() => order.push(4));
    b.release(7); // holds none: nothing changes
    assert.equal(b.inUse, 2);
    b.release(1);
    await w3;
    assert.deepEqual(order, [3]);
    assert.equal(b.inUse, 2);
    b.release(1); // released twice: nothing changes
    assert.equal(b.inUse, 2);
    b.release(2);
    await w4;
    assert.deepEqual(order, [3, 4]);
    assert.equal(b.peak, 2);
  });

  it("lends a released part's buffer to a later part of the same size, never one in use", () => {
    const b = new PartBudget(2);
    b.acquire(1);
    b.acquire(2);
    const one = b.bufferFor(1, 16);
    const two = b.bufferFor(2, 16);
    assert.notEqual(one, two, 'parts holding units never share a buffer');
    assert.throws(() => b.bufferFor(3, 16), UsageError, 'only a part holding a unit gets one');
    b.release(1);
    b.acquire(3);
    assert.equal(b.bufferFor(3, 16), one, "part 1's buffer, once released, serves part 3");
    b.release(2);
    b.acquire(4);
    const bigger = b.bufferFor(4, 32);
    assert.notEqual(bigger, two, 'a buffer of another size is not reused');
    assert.equal(bigger.length, 32);
    b.release(3);
    b.release(4);
    b.acquire(5);
    assert.equal(b.bufferFor(5, 32), bigger);
  });

  it('refuses a limit that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new PartBudget(bad), UsageError);
    }
  });
});
