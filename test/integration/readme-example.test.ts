/**
 * The README's library examples must run as written: extract each, run it with
 * plain node against the built package (self-referenced by its name), and
 * check what it did: the pipeline example's received snapshot; the sync +
 * retention example's copies and deletions.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { REPO } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { day, lines, sorted, takeSnapshots } from '../fixtures/retention.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

describe('README library example', { skip }, () => {
  let fs: BtrfsFs;
  const script = join(REPO, 'test', `.readme-example-${process.pid}.mjs`);
  /** Writes the README block between `<!-- marker:start -->` and `<!-- marker:end -->` to `script`. */
  const extract = async (marker: string) => {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    const m = new RegExp(
      `<!-- ${marker}:start -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\`\\s*<!-- ${marker}:end -->`,
    ).exec(readme);
    assert.ok(m?.[1], `README has the example marked ${marker}`);
    await writeFile(script, m[1]);
  };
  before(async () => {
    fs = await createBtrfs();
  });
  after(async () => {
    await rm(script, { force: true });
    await fs?.cleanup();
  });

  it('runs as written and receives the snapshot with its UUID', async () => {
    assert.ok(existsSync(join(REPO, 'dist', 'index.js')), 'dist/ is built (npm run build)');
    await extract('readme-example');

    const live = await subvolume(join(fs.mnt, 'live'));
    await makeTree(live, 0, { bigMiB: 2 });
    const snap = await snapshot(live, join(fs.mnt, 'snap'));
    const dest = join(fs.mnt, 'dest');
    await mkdir(dest);
    const r = await execa(process.execPath, [script, snap, `${dest}/`], {
      cwd: REPO,
      reject: false,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^received .*\/dest\/snap; stream sha256 [0-9a-f]{64}$/);
    const got = await subvolumeShow(join(dest, 'snap'));
    assert.equal(got.receivedUuid, (await subvolumeShow(snap)).uuid);
    assert.equal(await treeDigest(join(dest, 'snap')), await treeDigest(snap));
  });

  it('the sync + retention example runs as written: all sent, then thinned to the policy', async () => {
    const vol = await subvolume(join(fs.mnt, 'vol'));
    const snaps = join(fs.mnt, 'snaps');
    const backup = join(fs.mnt, 'backup');
    await mkdir(snaps);
    await mkdir(backup);
    // Ten days in a row: latest=2,daily=7 keeps the last seven days.
    const dates = Array.from({ length: 10 }, (_, i) => day(i));
    await takeSnapshots(vol, snaps, dates);
    await extract('readme-sync-example');
    const r = await execa(process.execPath, [script, `${snaps}/`, `${backup}/`], {
      cwd: REPO,
      reject: false,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^10 snapshot\(s\) sent$/m);
    const deleted = lines(r.stdout, 'deleted ').map((l) => l.slice(8));
    assert.deepEqual(
      deleted.sort(),
      dates.slice(0, 3).map((d) => `home-${d}`),
    );
    assert.deepEqual(
      await sorted(backup),
      dates.slice(3).map((d) => `home-${d}`),
    );
    assert.equal((await sorted(snaps)).length, 10, 'the source is untouched');
  });
});
