import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { AbortedError, UsageError } from '../../../src/errors.js';
import { forEachLimit, mapLimit } from '../../../src/streams/highland-adapter.js';
import { eventLoopTurns, waitFor } from '../../fixtures/wait-for.js';
import { trackUnhandled } from './helpers.js';

function counting() {
  const c = { running: 0, max: 0, started: 0 };
  return {
    c,
    async run<T>(work: () => Promise<T>): Promise<T> {
      c.started++;
      c.running++;
      c.max = Math.max(c.max, c.running);
      try {
        return await work();
      } finally {
        c.running--;
      }
    },
  };
}

describe('mapLimit', () => {
  it('keeps input order and never runs more than the limit', async () => {
    const { c, run } = counting();
    const items = Array.from({ length: 20 }, (_, i) => i);
    // Tasks finish out of input order: task i takes (i * 7) % 5 event-loop turns.
    const out = await mapLimit(items, 4, (i) =>
      run(async () => (await eventLoopTurns((i * 7) % 5), i * 2)),
    );
    assert.deepEqual(
      out,
      items.map((i) => i * 2),
    );
    assert.equal(c.max, 4);
  });

  it('pulls an async iterable lazily', async () => {
    let pulled = 0;
    const { c, run } = counting();
    async function* gen() {
      for (let i = 0; i < 10; i++) {
        pulled++;
        assert.ok(pulled <= c.started + 2, `pulled ${pulled} with ${c.started} started`);
        yield i;
      }
    }
    const out = await mapLimit(gen(), 2, (i) => run(async () => (await eventLoopTurns(2), i)));
    assert.deepEqual(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(c.max, 2);
  });

  it('returns [] for no items', async () => {
    assert.deepEqual(await mapLimit([], 3, async () => 1), []);
  });

  it('stops at the first failure, aborts running calls, waits for them, and rejects with it', async () => {
    const track = trackUnhandled();
    const boom = new Error('task 3 failed');
    const seen: number[] = [];
    let settledAfterAbort = 0;
    let closed = false;
    async function* gen() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    await assert.rejects(
      mapLimit(gen(), 3, async (i, signal) => {
        seen.push(i);
        if (i === 3) throw boom;
        // Task 0 finishes, which starts task 3; the others run until aborted and
        // then take a turn of the event loop to settle.
        if (i === 0) await eventLoopTurns(1);
        else
          await new Promise<void>((resolve) => {
            signal.addEventListener('abort', () => {
              void eventLoopTurns(1).then(() => {
                settledAfterAbort++;
                resolve();
              });
            });
          });
        if (i === 5) throw new Error('later failure');
        return i;
      }),
      (e: unknown) => e === boom,
    );
    assert.ok(Math.max(...seen) < 6, `started ${seen.join(',')}`);
    assert.ok(settledAfterAbort >= 1, 'running calls were aborted and awaited');
    assert.ok(closed, 'the generator was closed');
    assert.deepEqual(await track.stop(), []);
  });

  it('rejects with the error of the input iterator', async () => {
    const boom = new Error('listing failed');
    async function* gen() {
      yield 1;
      throw boom;
    }
    await assert.rejects(
      mapLimit(gen(), 2, async (i) => i),
      (e: unknown) => e === boom,
    );
  });

  it('throws AbortedError without calling fn when aborted before the start', async () => {
    const ac = new AbortController();
    ac.abort('stop');
    let calls = 0;
    await assert.rejects(
      mapLimit([1, 2, 3], 2, async () => calls++, { signal: ac.signal }),
      (e: unknown) => e instanceof AbortedError && e.cause === 'stop',
    );
    assert.equal(calls, 0);
  });

  it('throws AbortedError mid-flight after the running calls settled', async () => {
    const track = trackUnhandled();
    const ac = new AbortController();
    const { c, run } = counting();
    const p = mapLimit(
      Array.from({ length: 100 }, (_, i) => i),
      3,
      (i, signal) =>
        run(
          () =>
            new Promise<number>((resolve, reject) => {
              // The first six finish at once; the rest run until aborted.
              if (i < 6) return void eventLoopTurns(1).then(() => resolve(i));
              signal.addEventListener('abort', () => reject(signal.reason));
            }),
        ),
      { signal: ac.signal },
    );
    await waitFor(() => c.started === 9 && c.running === 3, {
      what: 'six finished calls and three running',
    });
    ac.abort('SIGINT');
    await assert.rejects(p, (e: unknown) => e instanceof AbortedError && e.cause === 'SIGINT');
    assert.equal(c.running, 0);
    assert.equal(c.started, 9, 'nothing started after the abort');
    assert.deepEqual(await track.stop(), []);
  });

  it('validates the limit', async () => {
    await assert.rejects(
      mapLimit([1], 0, async (i) => i),
      UsageError,
    );
    await assert.rejects(
      mapLimit([1], 1.5, async (i) => i),
      UsageError,
    );
  });
});

describe('forEachLimit', () => {
  it('runs every item with the limit', async () => {
    const { c, run } = counting();
    const done: number[] = [];
    await forEachLimit(new Set([1, 2, 3, 4, 5]), 2, (i) =>
      run(async () => {
        await eventLoopTurns(1);
        done.push(i);
      }),
    );
    assert.deepEqual(done.sort(), [1, 2, 3, 4, 5]);
    assert.equal(c.max, 2);
  });
});
