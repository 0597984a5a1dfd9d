import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { MinHeap } from '../../../src/planner/min-heap.js';

/** Pops everything. */
function drain<T>(h: MinHeap<T>): T[] {
  const out: T[] = [];
  while (h.size > 0) out.push(h.pop() as T);
  return out;
}

describe('MinHeap', () => {
  it('pops in ascending order whatever the push order', () => {
    // A fixed permutation of 0..40 (37 is prime to 41): every shape of sift-down occurs.
    const values = Array.from({ length: 41 }, (_, i) => (i * 37) % 41);
    const h = new MinHeap<number>((a, b) => a < b);
    for (const v of values) h.push(v);
    assert.equal(h.size, 41);
    assert.deepEqual(
      drain(h),
      Array.from({ length: 41 }, (_, i) => i),
    );
    assert.equal(h.pop(), undefined);
  });

  it('keeps the order when pushes and pops interleave', () => {
    const h = new MinHeap<number>((a, b) => a < b);
    for (const v of [5, 3, 9, 1, 7]) h.push(v);
    assert.equal(h.pop(), 1);
    assert.equal(h.pop(), 3);
    for (const v of [2, 8, 4]) h.push(v);
    assert.deepEqual(drain(h), [2, 4, 5, 7, 8, 9]);
  });

  it('sifts down to the right child when it is the smaller one', () => {
    const h = new MinHeap<number>((a, b) => a < b);
    // After popping 0, the last item (6) moves to the root; its children are 2 (left) and 1 (right).
    for (const v of [0, 2, 1, 3, 4, 5, 6]) h.push(v);
    assert.deepEqual(drain(h), [0, 1, 2, 3, 4, 5, 6]);
  });

  it('orders by the given comparison (here: descending)', () => {
    const h = new MinHeap<number>((a, b) => a > b);
    for (const v of [4, 1, 8, 2, 6, 3, 7, 5]) h.push(v);
    assert.deepEqual(drain(h), [8, 7, 6, 5, 4, 3, 2, 1]);
  });
});
