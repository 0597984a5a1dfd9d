/**
 * DryRunStore on the in-memory store: reads delegate, measuring records
 * nothing, every write rejects with DryRunError and leaves the store as it was,
 * a real run's preflight refusal becomes a warning, and there is no lock.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setLogger } from '../../../../src/log.js';
import type { Logger, Warning } from '../../../../src/log.js';
import type { Volume } from '../../../../src/planner/volume.js';
import { runPipeline } from '../../../../src/streams/pipeline.js';
import { sinkStage, sourceStage } from '../../../../src/streams/stage.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';
import type { MeasureOptions } from '../../../../src/stores/store.js';
import { DryRunError, DryRunStore } from '../../../../src/stores/wrappers/dry-run-store.js';
import { syntheticStream, syntheticVolume } from '../../../fixtures/memory-snapshots.js';

const a = syntheticVolume(1, 'a');
const b = syntheticVolume(2, 'b', a);

/** A memory store that remembers the options each measure got. */
class MeasureSpy extends MemoryStore {
  readonly measured: MeasureOptions[] = [];
  override measure(to: Volume, from: Volume | null, opts: MeasureOptions = {}): Promise<number> {
    this.measured.push(opts);
    return super.measure(to, from, opts);
  }
}

async function seeded(): Promise<MeasureSpy> {
  const store = new MeasureSpy({ name: 'm' });
  await store.add(a, null, await syntheticStream(a, null, 'content of a'));
  // A partial: a receive of b that broke off.
  const r = await store.receive(b, a);
  const broken = Readable.from(
    (async function* () {
      yield Buffer.from('not all of it');
      throw new Error('broke off');
    })(),
  );
  await assert.rejects(runPipeline([sourceStage('broken', broken), ...r.transforms, r.sink]));
  return store;
}

async function sent(store: DryRunStore | MemoryStore, to: Volume): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write: (c: Buffer, _e, cb) => {
      chunks.push(c);
      cb();
    },
  });
  await runPipeline([store.send(to, null), sinkStage('collect', sink)]);
  return Buffer.concat(chunks);
}

describe('DryRunStore', () => {
  const warnings: Warning[] = [];
  let previous: Logger | undefined;
  before(() => {
    previous = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  });
  after(() => previous && setLogger(previous));

  it('delegates reads: view, listPartials, describeDiff, send', async () => {
    const inner = await seeded();
    const dry = new DryRunStore(inner);
    assert.equal(dry.kind, inner.kind);
    assert.equal(dry.location, inner.location);
    assert.deepEqual(await dry.view('dest'), await inner.view('dest'));
    assert.deepEqual(await dry.listPartials(), await inner.listPartials());
    assert.equal(dry.describeDiff(a, null), inner.describeDiff(a, null));
    assert.ok((await sent(dry, a)).equals(await sent(inner, a)));
  });

  it('measures with record: false, keeping the caller’s other options', async () => {
    const inner = await seeded();
    const signal = new AbortController().signal;
    const size = await new DryRunStore(inner).measure(a, null, { signal });
    assert.equal(size, inner.diffs[0]!.bytes.length);
    assert.deepEqual(inner.measured, [{ signal, record: false }]);
  });

  it('refuses every write with DryRunError and changes nothing', async () => {
    const inner = await seeded();
    const dry = new DryRunStore(inner);
    const before = { diffs: inner.diffs, partials: await inner.listPartials() };
    const offer = (await inner.view('dest')).diffs![0]!;
    await assert.rejects(dry.receive(b, a), DryRunError);
    await assert.rejects(dry.copyFrom(inner, b, a), DryRunError);
    await assert.rejects(dry.deleteVolume(a), DryRunError);
    await assert.rejects(dry.deleteDiff(offer), DryRunError);
    await assert.rejects(dry.deletePartials(before.partials), DryRunError);
    await dry.deletePartials([]);
    assert.deepEqual(inner.diffs, before.diffs);
    assert.deepEqual(await inner.listPartials(), before.partials);
    assert.equal(before.partials.length, 1);
  });

  it('has no lock, so a dry run neither waits for nor blocks a real run', async () => {
    const inner = await seeded();
    assert.equal((new DryRunStore(inner) as { lock?: unknown }).lock, undefined);
    const held = await inner.lock();
    await held.release();
  });

  it('preflight: what a real run would refuse is a warning, not a problem', async () => {
    const dry = new DryRunStore(await seeded());
    warnings.length = 0;
    const clash = { to: { uuid: b.uuid, path: 'a' }, size: 10, estimated: false };
    assert.deepEqual(await dry.preflight([clash], { spaceCheck: false }), []);
    assert.deepEqual(
      warnings.map((w) => [w.code, w.message]),
      [
        [
          'NAME_CLASH',
          'a real run would refuse to start: memory://m/a already exists (another snapshot)',
        ],
      ],
    );
    const tight = new DryRunStore(new MemoryStore({ name: 't', capacity: 5 }));
    const estimated = { ...clash, to: { ...clash.to, path: 'c' }, estimated: true };
    const kept = await tight.preflight([estimated]);
    assert.deepEqual(
      kept.map((p) => [p.code, p.warning]),
      [['NO_SPACE', true]],
      'a warning anyway is returned for sync to show',
    );
  });
});
