/**
 * BtrfsStore's commit of a received `.part` on real btrfs, the success side
 * (test/integration/sync-guards.test.ts has the refusal): an untrusted full
 * and incremental stream are renamed to their final names only after the
 * check, and the sink's result names the final path; and an incremental that
 * btrfs receive built on another subvolume than the pinned parent copy stays a
 * `.part`. Both named in the `commit` mutation scope (scripts/mutate-scopes.mjs):
 * a check that refuses everything fails the first, one that skips the parent
 * check the second.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { StoreError } from '../../src/errors.js';
import { btrfsReceive } from '../../src/stages/btrfs-receive.js';
import { uuidRewrite } from '../../src/stages/uuid-rewrite.js';
import { runPipeline } from '../../src/streams/pipeline.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

function store(dir: string): BtrfsStore {
  return new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
}

describe('BtrfsStore commit', { skip }, () => {
  let fs: BtrfsFs;
  let snaps: string;
  before(async () => {
    fs = await createBtrfs();
    const live = await subvolume(join(fs.mnt, 'live'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(snaps);
    await makeTree(live, 0, { bigMiB: 1 });
    await snapshot(live, join(snaps, 'a'));
    await makeTree(live, 1, { bigMiB: 1 });
    await snapshot(live, join(snaps, 'b'));
  });
  after(async () => fs?.cleanup());

  it('BtrfsStore commits untrusted full and incremental streams under their names, on the parent they were built on', async () => {
    const source = store(snaps);
    const vols = (await source.view('source')).volumes;
    const a = vols.find((v) => v.path === 'a')!;
    const b = vols.find((v) => v.path === 'b')!;
    const dest = join(fs.mnt, 'dest');
    await mkdir(dest);

    const full = await store(dest).receive(a, null);
    await runPipeline([source.send(a, null), ...full.transforms, full.sink]);
    assert.deepEqual(await full.sink.result, { path: join(dest, 'a') });
    const destA = await subvolumeShow(join(dest, 'a'));
    assert.equal(destA.receivedUuid, a.uuid);
    assert.equal(destA.readOnly, true);

    const incr = await store(dest).receive(b, a);
    await runPipeline([source.send(b, a), ...incr.transforms, incr.sink]);
    assert.deepEqual(await incr.sink.result, { path: join(dest, 'b') });
    const destB = await subvolumeShow(join(dest, 'b'));
    assert.equal(destB.receivedUuid, b.uuid);
    assert.equal(destB.parentUuid, destA.uuid, 'built on the copy of a in this store');
    assert.deepEqual((await readdir(dest)).sort(), ['a', 'b'], 'no .part left');
  });

  it('BtrfsStore leaves an incremental that btrfs receive built on another subvolume than the pinned parent copy as .part', async () => {
    const source = store(snaps);
    const vols = (await source.view('source')).volumes;
    const a = vols.find((v) => v.path === 'a')!;
    const b = vols.find((v) => v.path === 'b')!;
    const dest = join(fs.mnt, 'dest-moved');
    await mkdir(dest);
    const full = await store(dest).receive(a, null);
    await runPipeline([source.send(a, null), ...full.transforms, full.sink]);
    const copyOfA = (await subvolumeShow(join(dest, 'a'))).uuid!;

    // The store pins the copy of a (its own UUID) when the receive is set up ...
    const incr = await store(dest).receive(b, a);
    // ... and only then a subvolume appears that carries that UUID as received UUID
    // (same content as a): btrfs receive finds a parent by received UUID first.
    const later = join(dest, 'later');
    await mkdir(later);
    await runPipeline([
      source.send(a, null),
      uuidRewrite({ target: { uuid: copyOfA }, subvolumeName: 'decoy' }),
      btrfsReceive({ dir: later }),
    ]);
    const decoy = await subvolumeShow(join(later, 'decoy'));
    assert.equal(decoy.receivedUuid, copyOfA);

    await assert.rejects(
      runPipeline([source.send(b, a), ...incr.transforms, incr.sink]),
      (e: unknown) => {
        assert.ok(e instanceof StoreError, String(e));
        assert.match(
          e.message,
          new RegExp(`was built on ${decoy.uuid!}, not on ${join(dest, 'a')}; left as partial`),
        );
        return true;
      },
    );
    assert.deepEqual((await readdir(dest)).sort(), ['a', 'b.part', 'later'], 'b only as .part');
    assert.equal((await subvolumeShow(join(dest, 'b.part'))).parentUuid, decoy.uuid);
  });
});
