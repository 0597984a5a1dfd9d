/**
 * The sync engine against in-memory stores: what it plans and does, dry run,
 * deletes, and what a failure part-way leaves.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { StreamCorruptError, TransferError } from '../../src/errors.js';
import type { Volume } from '../../src/planner/volume.js';
import { sourceStage } from '../../src/streams/stage.js';
import type { SourceStage } from '../../src/streams/stage.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import type { StoreView } from '../../src/planner/plan-input.js';
import type { MeasureOptions, StoreOpOptions, StoreRole } from '../../src/stores/store.js';
import { sync } from '../../src/sync.js';
import { syntheticStream, syntheticVolume } from '../fixtures/memory-snapshots.js';

const a = syntheticVolume(1, 'a');
const b = syntheticVolume(2, 'b', a);
const c = syntheticVolume(3, 'c', b);
const x = syntheticVolume(9, 'x');

/** A source holding a full stream of `a` and incrementals b←a, c←b. */
async function chain<S extends MemoryStore = MemoryStore>(
  store: S = new MemoryStore({ name: 'src' }) as S,
): Promise<S> {
  await store.add(a, null, await syntheticStream(a, null, 'content of a'));
  await store.add(b, a, await syntheticStream(b, a, 'content of b'));
  await store.add(c, b, await syntheticStream(c, b, 'content of c'));
  return store;
}

const edges = (s: MemoryStore) =>
  s.diffs.map((d) => `${d.to.path}<${d.from?.path ?? 'None'}`).sort();
const paths = async (s: MemoryStore) => (await s.view('dest')).volumes.map((v) => v.path).sort();

/** A source whose send of `c` breaks off half-way (a truncated stream). */
class BreakingStore extends MemoryStore {
  override send(to: Volume, from: Volume | null, opts?: StoreOpOptions): SourceStage<unknown> {
    if (to.uuid !== c.uuid) return super.send(to, from, opts);
    const bytes = this.diffs.find((d) => d.to.uuid === c.uuid)!.bytes;
    return sourceStage('broken send', Readable.from([bytes.subarray(0, bytes.length >> 1)]));
  }
}

/** A source that offers its diffs as estimates (so the plan measures them) and remembers each measure's options. */
class EstimatingStore extends MemoryStore {
  readonly measured: MeasureOptions[] = [];
  override async view(role: StoreRole, opts?: StoreOpOptions): Promise<StoreView> {
    const view = await super.view(role, opts);
    return { ...view, diffs: view.diffs?.map((d) => ({ ...d, estimated: true })) ?? [] };
  }
  override measure(to: Volume, from: Volume | null, opts: MeasureOptions = {}): Promise<number> {
    this.measured.push(opts);
    return super.measure(to, from, opts);
  }
}

describe('sync with in-memory stores', () => {
  it('plans a full transfer then incrementals, and copies the streams byte for byte', async () => {
    const src = await chain();
    const dst = new MemoryStore({ name: 'dst' });
    const report = await sync(src, dst);
    assert.deepEqual(
      report.transferred.map((t) => `${t.transfer.to.path}<${t.transfer.from?.path ?? 'None'}`),
      ['a<None', 'b<a', 'c<b'],
    );
    assert.deepEqual(edges(dst), ['a<None', 'b<a', 'c<b']);
    for (const d of dst.diffs) {
      const s = src.diffs.find((e) => e.to.uuid === d.to.uuid)!;
      assert.ok(d.bytes.equals(s.bytes), `${d.to.path} copied byte for byte`);
    }
    const again = await sync(src, dst);
    assert.deepEqual(again.transferred, [], 'a second run has nothing to do');
  });

  it('a dry run plans and changes nothing', async () => {
    const src = await chain();
    const dst = new MemoryStore({ name: 'dst' });
    await dst.add(x, null, await syntheticStream(x, null, 'only at dest'));
    let planned = 0;
    const report = await sync(src, dst, {
      dryRun: true,
      delete: true,
      onPlan: (p) => (planned = p.transfers.length),
    });
    assert.equal(planned, 3);
    assert.deepEqual(report.transferred, []);
    assert.deepEqual(report.deleted, []);
    assert.deepEqual(edges(dst), ['x<None']);
    assert.deepEqual(await dst.listPartials(), []);
  });

  it('a dry run measures without recording and takes no lock; a real run records', async () => {
    const src = await chain(new EstimatingStore({ name: 'src' }));
    const dst = new MemoryStore({ name: 'dst' });
    const held = await dst.lock();
    const report = await sync(src, dst, { dryRun: true });
    await held.release();
    assert.equal(report.plan.transfers.length, 3);
    assert.ok(src.measured.length > 0, 'the plan measured');
    assert.ok(
      src.measured.every((o) => o.record === false),
      'nothing recorded',
    );
    assert.deepEqual(dst.diffs, []);
    src.measured.length = 0;
    await sync(src, dst);
    assert.ok(src.measured.length > 0 && src.measured.every((o) => o.record === undefined));
  });

  it('-d deletes what the source does not have; without it, it stays', async () => {
    const src = await chain();
    const dst = new MemoryStore({ name: 'dst' });
    await dst.add(x, null, await syntheticStream(x, null, 'only at dest'));
    await sync(src, dst);
    assert.deepEqual(await paths(dst), ['a', 'b', 'c', 'x'], 'kept without -d');
    const deletedDiffs: string[] = [];
    await sync(src, dst, { delete: true, onDeleteDiff: (d) => deletedDiffs.push(d.to) });
    assert.deepEqual(deletedDiffs, [x.uuid]);
    assert.deepEqual(await paths(dst), ['a', 'b', 'c']);
  });

  it('a failure part-way keeps earlier transfers, commits nothing after, and hides the partial', async () => {
    const src = await chain(new BreakingStore({ name: 'src' }));
    const dst = new MemoryStore({ name: 'dst' });
    await dst.add(x, null, await syntheticStream(x, null, 'only at dest'));
    const done: string[] = [];
    await assert.rejects(
      sync(src, dst, { delete: true, onTransferDone: (d) => done.push(d.transfer.to.path) }),
      (err) =>
        err instanceof TransferError &&
        err.path === 'c' &&
        err.cause instanceof StreamCorruptError &&
        err.message === `c: ${err.cause.message}`,
    );
    assert.deepEqual(done, ['a', 'b']);
    assert.deepEqual(await paths(dst), ['a', 'b', 'x'], 'c not listed; nothing deleted');
    const partials = await dst.listPartials();
    assert.deepEqual(
      partials.map((p) => p.where),
      ['memory://dst/c.part'],
    );
    // With the source mended, a rerun sends only what is missing and cleans up.
    await dst.deletePartials(partials);
    const rerun = await sync(await chain(), dst, { delete: true });
    assert.deepEqual(
      rerun.transferred.map((t) => t.transfer.to.path),
      ['c'],
    );
    assert.deepEqual(await paths(dst), ['a', 'b', 'c']);
  });
});
