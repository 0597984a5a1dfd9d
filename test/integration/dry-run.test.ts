/**
 * `buttersink -n` writes nothing anywhere: after a dry run that measures
 * (full and incremental diffs, no `.bs` yet) and would delete (`-d`), the
 * source and destination directories are byte-identical to before, with no
 * new file (no `<snapshot>.bs`), no `.part` and no lock file.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

describe('buttersink -n', { skip }, () => {
  let A: BtrfsFs;
  let snaps: string;
  let dst: string;

  before(async () => {
    A = await createBtrfs({ size: 1 << 30 });
    const live = await subvolume(join(A.mnt, 'live'));
    snaps = join(A.mnt, 'snaps');
    dst = join(A.mnt, 'dst');
    await Promise.all([mkdir(snaps), mkdir(dst)]);
    for (let step = 0; step < 3; step++) {
      await makeTree(live, step, { bigMiB: 1 });
      await snapshot(live, join(snaps, `s${step + 1}`));
    }
    // The destination holds a snapshot the source lacks (-d would delete it).
    await snapshot(live, join(dst, 'only-here'));
  });
  after(async () => A?.cleanup());

  it('leaves the source and destination byte-identical (no .bs, no partial, no lock)', async () => {
    const beforeSrc = await treeDigest(snaps);
    const beforeDst = await treeDigest(dst);
    const r = await runCli(['-n', '-d', '-q', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /dry run: nothing changed/);
    assert.match(r.stdout, /s3/, 'the plan names the snapshots it would send');
    assert.equal(await treeDigest(snaps), beforeSrc, 'source unchanged');
    assert.equal(await treeDigest(dst), beforeDst, 'destination unchanged');
    // The same run for real does record sizes: the dry run's silence is not for want of measuring.
    const real = await runCli(['-q', `${snaps}/`, `${dst}/`]);
    assert.equal(real.exitCode, 0, real.stderr);
    assert.notEqual(await treeDigest(snaps), beforeSrc, 'a real run records measured sizes');
  });
});
