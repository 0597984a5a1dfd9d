/**
 * Fixed costs of a run (issue 12, "Fixed costs"): a btrfs store opened as a
 * run opens it keeps its listing while it holds the lock, so a run lists each
 * side once however many snapshots it receives, and the kept listing stays
 * true (exact parents, received UUIDs) as the run commits. Spawns are counted
 * through the one exec wrapper's debug lines (`src/btrfs/exec.ts`).
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { listSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { runBtrfs } from '../../src/btrfs/exec.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { setLogger } from '../../src/log.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { loadStore } from '../../src/stores/load-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

const locationOf = (dir: string) => parseLocation(`${dir}/`) as BtrfsLocation;

/** Runs `fn`, returning the `btrfs` argument lists it ran (exec and spawn). */
async function btrfsRuns<T>(fn: () => Promise<T>): Promise<{ result: T; runs: string[] }> {
  const runs: string[] = [];
  const prev = setLogger({
    warn: () => undefined,
    debug: (message, details) => {
      if (message !== 'exec' && message !== 'spawn') return;
      runs.push(((details?.['argv'] as string[]) ?? []).slice(1).join(' '));
    },
  });
  try {
    return { result: await fn(), runs };
  } finally {
    setLogger(prev);
  }
}

const lists = (runs: readonly string[]) => runs.filter((r) => r.startsWith('subvolume list'));

for (const noFuse of [false, true]) {
  describe(
    `one listing per side per run${noFuse ? ' (BUTTERSINK_NO_FUSE=1)' : ''}`,
    { skip },
    () => {
      let fs: BtrfsFs;
      let snaps: string;
      let backup: string;
      before(async () => {
        if (noFuse) process.env['BUTTERSINK_NO_FUSE'] = '1';
        else delete process.env['BUTTERSINK_NO_FUSE'];
        fs = await createBtrfs({ size: 1 << 30 });
        const live = await subvolume(join(fs.mnt, 'live'));
        snaps = join(fs.mnt, 'snaps');
        backup = join(fs.mnt, 'backup');
        await Promise.all([mkdir(snaps), mkdir(backup)]);
        for (let step = 0; step < 4; step++) {
          await makeTree(live, step, { bigMiB: 1 });
          await snapshot(live, join(snaps, `s${step + 1}`));
        }
      });
      after(async () => {
        delete process.env['BUTTERSINK_NO_FUSE'];
        await fs?.cleanup();
      });

      it('a run of 4 transfers (1 full, 3 incremental) lists each side once, parents exact', async () => {
        const [source, dest] = await Promise.all([
          loadStore(locationOf(snaps), { role: 'source' }),
          loadStore(locationOf(backup), { role: 'dest' }),
        ]);
        const { result, runs } = await btrfsRuns(() => sync(source, dest));
        assert.equal(result.transferred.length, 4);
        assert.deepEqual(
          result.transferred.map((t) => t.transfer.from?.path ?? null),
          [null, 's1', 's2', 's3'],
        );
        assert.equal(lists(runs).length, 2, `btrfs runs:\n${runs.join('\n')}`);
        // Every copy is complete and built on the copy of its parent here.
        for (let i = 1; i <= 4; i++) {
          const [orig, copy] = await Promise.all([
            subvolumeShow(join(snaps, `s${i}`)),
            subvolumeShow(join(backup, `s${i}`)),
          ]);
          assert.equal(copy.readOnly, true);
          assert.equal(copy.receivedUuid, orig.uuid);
          if (i > 1) {
            const parent = await subvolumeShow(join(backup, `s${i - 1}`));
            assert.equal(copy.parentUuid, parent.uuid, `s${i} built on the copy of s${i - 1}`);
          }
        }
      });

      it('a rerun with nothing to do lists each side once and runs no other btrfs but qgroup', async () => {
        const [source, dest] = await Promise.all([
          loadStore(locationOf(snaps), { role: 'source' }),
          loadStore(locationOf(backup), { role: 'dest' }),
        ]);
        const { result, runs } = await btrfsRuns(() => sync(source, dest));
        assert.equal(result.transferred.length, 0);
        assert.equal(lists(runs).length, 2, `btrfs runs:\n${runs.join('\n')}`);
        assert.deepEqual(
          runs.filter((r) => !r.startsWith('subvolume list') && !r.startsWith('qgroup show')),
          [],
        );
      });

      it('without a kept listing (a server session), each receive lists again', async () => {
        const live = join(fs.mnt, 'live');
        for (let step = 4; step < 6; step++) {
          await makeTree(live, step, { bigMiB: 1 });
          await snapshot(live, join(snaps, `s${step + 1}`));
        }
        const { result, runs } = await btrfsRuns(() =>
          sync(new BtrfsStore(locationOf(snaps)), new BtrfsStore(locationOf(backup))),
        );
        assert.equal(result.transferred.length, 2);
        assert.ok(lists(runs).length > 2, `btrfs runs:\n${runs.join('\n')}`);
      });

      it('a kept listing ends with the run: the same stores list afresh in the next run', async () => {
        const live = join(fs.mnt, 'live');
        await makeTree(live, 7, { bigMiB: 1 });
        await snapshot(live, join(snaps, 's7'));
        const source = await loadStore(locationOf(snaps), { role: 'source' });
        const dest = await loadStore(locationOf(backup), { role: 'dest' });
        const first = await sync(source, dest);
        assert.deepEqual(
          first.transferred.map((t) => t.transfer.to.path),
          ['s7'],
        );
        // Between runs, outside any lock, the copy goes away: the next run must see that.
        await runBtrfs(['subvolume', 'delete', join(backup, 's7')]);
        const second = await sync(source, dest);
        assert.deepEqual(
          second.transferred.map((t) => t.transfer.to.path),
          ['s7'],
        );
        assert.deepEqual(
          (await listSubvolumes(backup)).map((s) => s.path),
          ['s1', 's2', 's3', 's4', 's5', 's6', 's7'],
        );
      });
    },
  );
}

describe('read-only flags without a second listing', { skip }, () => {
  let fs: BtrfsFs;
  let dir: string;
  const bound: string[] = [];
  before(async () => {
    fs = await createBtrfs();
    dir = join(fs.mnt, 'mixed');
    await mkdir(dir);
    const rw = await subvolume(join(dir, 'rw'));
    await snapshot(rw, join(dir, 'ro'));
    await runBtrfs(['subvolume', 'snapshot', rw, join(dir, 'rw-snap')]);
  });
  after(async () => {
    for (const m of bound.reverse()) await execa('umount', [m]).catch(() => undefined);
    await fs?.cleanup();
  });

  const flags = async (at: string) =>
    Object.fromEntries((await listSubvolumes(at)).map((s) => [s.path, s.readOnly]));
  const expected = { ro: true, rw: false, 'rw-snap': false };

  it('tells read-only from read-write by access(2), as btrfs subvolume list -r does', async () => {
    const { runs } = await btrfsRuns(async () => assert.deepEqual(await flags(dir), expected));
    assert.equal(runs.filter((r) => r.includes(' -r ')).length, 0, runs.join('\n'));
  });

  it('asks btrfs (list -r) through a read-only bind mount, where access(2) cannot tell', async () => {
    const ro = join(fs.mnt, '..', 'ro-bind');
    await mkdir(ro, { recursive: true });
    await execa('mount', ['--bind', '-o', 'ro', dir, ro]);
    bound.push(ro);
    await execa('mount', ['-o', 'remount,bind,ro', ro]);
    const { runs } = await btrfsRuns(async () => assert.deepEqual(await flags(ro), expected));
    assert.equal(runs.filter((r) => r.includes(' -r ')).length, 1, runs.join('\n'));
  });

  it('asks btrfs (list -r) when something is mounted below the directory', async () => {
    const over = join(dir, 'rw', 'sub');
    await mkdir(over);
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', over]);
    bound.push(over);
    const { runs } = await btrfsRuns(async () => assert.deepEqual(await flags(dir), expected));
    assert.equal(runs.filter((r) => r.includes(' -r ')).length, 1, runs.join('\n'));
  });
});
