/**
 * RetryStore on the in-memory store behind a fault-injecting wrapper: the
 * idempotent operations (view, measure, listPartials, preflight) are retried
 * after transient failures with exponential backoff on a fake clock; a store's
 * own refusal is not retried; writes and sends run exactly once; an abort
 * during a backoff stops it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StoreError } from '../../../../src/errors.js';
import { setLogger } from '../../../../src/log.js';
import type { Logger, Warning } from '../../../../src/log.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';
import type { Store } from '../../../../src/stores/store.js';
import { RetryStore } from '../../../../src/stores/wrappers/retry-store.js';
import type { RetryOptions } from '../../../../src/stores/wrappers/retry-store.js';
import { syntheticStream, syntheticVolume } from '../../../fixtures/memory-snapshots.js';

const a = syntheticVolume(1, 'a');
const b = syntheticVolume(2, 'b', a);

/** A connection reset, as Node reports one. */
const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

type Op = 'view' | 'measure' | 'listPartials' | 'preflight' | 'receive' | 'deleteDiff';

/**
 * Wraps a store: the next `failures[op]` calls of `op` fail with `fault()`
 * before reaching it; `calls[op]` counts every call.
 */
function faulty(
  inner: MemoryStore,
  failures: Partial<Record<Op, number>>,
  fault = reset,
): Store & {
  calls: Record<Op, number>;
} {
  const calls: Record<Op, number> = {
    view: 0,
    measure: 0,
    listPartials: 0,
    preflight: 0,
    receive: 0,
    deleteDiff: 0,
  };
  const gate = <T>(op: Op, run: () => Promise<T>): Promise<T> => {
    calls[op] += 1;
    const left = failures[op] ?? 0;
    if (left > 0) {
      failures[op] = left - 1;
      return Promise.reject(fault());
    }
    return run();
  };
  return {
    calls,
    kind: inner.kind,
    location: inner.location,
    view: (role, o) => gate('view', () => inner.view(role, o)),
    measure: (to, from, o) => gate('measure', () => inner.measure(to, from, o)),
    listPartials: (o) => gate('listPartials', () => inner.listPartials(o)),
    preflight: (t, o) => gate('preflight', () => inner.preflight(t, o)),
    receive: (to, from, o) => gate('receive', () => inner.receive(to, from, o)),
    deleteDiff: (d, o) => gate('deleteDiff', () => inner.deleteDiff(d, o)),
    send: (to, from, o) => inner.send(to, from, o),
    deleteVolume: (v) => inner.deleteVolume(v),
    deletePartials: (p, o) => inner.deletePartials(p, o),
    close: () => inner.close(),
  };
}

async function seeded(): Promise<MemoryStore> {
  const store = new MemoryStore({ name: 'm' });
  await store.add(a, null, await syntheticStream(a, null, 'content of a'));
  return store;
}

/** A fake clock: records each wait and resolves it at once. */
function fakeClock(): { waits: number[]; opts: RetryOptions } {
  const waits: number[] = [];
  return {
    waits,
    opts: {
      sleep: async (ms, signal) => {
        signal?.throwIfAborted();
        waits.push(ms);
      },
      random: () => 1,
      baseDelayMs: 100,
      maxDelayMs: 300,
    },
  };
}

describe('RetryStore', () => {
  const warnings: Warning[] = [];
  let previous: Logger | undefined;
  before(() => {
    previous = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  });
  after(() => previous && setLogger(previous));

  it('retries view, measure, listPartials and preflight after transient failures, backing off', async () => {
    const inner = await seeded();
    const flaky = faulty(inner, { view: 3, measure: 1, listPartials: 2, preflight: 1 });
    const clock = fakeClock();
    const store = new RetryStore(flaky, clock.opts);
    warnings.length = 0;
    assert.deepEqual(await store.view('dest'), await inner.view('dest'));
    assert.deepEqual(clock.waits, [100, 200, 300], 'doubling, capped at maxDelayMs');
    assert.equal(await store.measure(a, null), inner.diffs[0]!.bytes.length);
    assert.deepEqual(await store.listPartials(), []);
    const free = { to: { uuid: b.uuid, path: 'b' }, size: 1, estimated: false };
    assert.deepEqual(await store.preflight!([free]), []);
    assert.deepEqual(flaky.calls, {
      view: 4,
      measure: 2,
      listPartials: 3,
      preflight: 2,
      receive: 0,
      deleteDiff: 0,
    });
    assert.equal(warnings.length, 7);
    assert.match(
      warnings[0]!.message,
      /listing \(dest\) failed \(read ECONNRESET\); retrying in 0\.1 s \(attempt 2 of 4\)/,
    );
  });

  it('gives up after the last attempt with the last error', async () => {
    const flaky = faulty(await seeded(), { view: 10 });
    const clock = fakeClock();
    await assert.rejects(new RetryStore(flaky, { ...clock.opts, attempts: 3 }).view('dest'), {
      code: 'ECONNRESET',
    });
    assert.equal(flaky.calls.view, 3);
    assert.equal(clock.waits.length, 2);
  });

  it("does not retry a store's own refusal", async () => {
    const flaky = faulty(await seeded(), { measure: 1 }, () => new StoreError('no such diff'));
    const clock = fakeClock();
    await assert.rejects(new RetryStore(flaky, clock.opts).measure(b, a), StoreError);
    assert.equal(flaky.calls.measure, 1);
    assert.deepEqual(clock.waits, []);
  });

  it('runs writes once, transient failure or not', async () => {
    const inner = await seeded();
    const flaky = faulty(inner, { receive: 1, deleteDiff: 1 });
    const store = new RetryStore(flaky, fakeClock().opts);
    await assert.rejects(store.receive(b, a), { code: 'ECONNRESET' });
    const offer = (await inner.view('dest')).diffs![0]!;
    await assert.rejects(store.deleteDiff(offer), { code: 'ECONNRESET' });
    assert.equal(flaky.calls.receive, 1);
    assert.equal(flaky.calls.deleteDiff, 1);
    assert.equal(inner.diffs.length, 1, 'nothing deleted');
  });

  it('an abort during a backoff stops the retries', async () => {
    const flaky = faulty(await seeded(), { view: 10 });
    const controller = new AbortController();
    const store = new RetryStore(flaky, {
      ...fakeClock().opts,
      sleep: async (_ms, signal) => {
        controller.abort(new Error('stop'));
        signal?.throwIfAborted();
      },
    });
    await assert.rejects(store.view('dest', { signal: controller.signal }), /stop/);
    assert.equal(flaky.calls.view, 1);
  });

  it('has the optional members exactly when the wrapped store has them', async () => {
    const inner = await seeded();
    const full = new RetryStore(inner);
    assert.equal(typeof full.lock, 'function');
    assert.equal(typeof full.describeDiff, 'function');
    const bare = new RetryStore(faulty(inner, {}));
    assert.equal(bare.lock, undefined);
    assert.equal(bare.copyFrom, undefined);
    assert.equal(bare.describeDiff, undefined);
    const held = await full.lock!();
    await assert.rejects(inner.lock(), /locked by another run/);
    await held.release();
  });
});
