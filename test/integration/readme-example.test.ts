/**
 * The README's library example must run as written: extract it, run it with
 * plain node against the built package (self-referenced by its name), and
 * check the snapshot it received.
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
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

describe('README library example', { skip }, () => {
  let fs: BtrfsFs;
  const script = join(REPO, 'test', `.readme-example-${process.pid}.mjs`);
  before(async () => {
    fs = await createBtrfs();
  });
  after(async () => {
    await rm(script, { force: true });
    await fs?.cleanup();
  });

  it('runs as written and receives the snapshot with its UUID', async () => {
    assert.ok(existsSync(join(REPO, 'dist', 'index.js')), 'dist/ is built (npm run build)');
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    const m =
      /<!-- readme-example:start -->\s*```js\n([\s\S]*?)```\s*<!-- readme-example:end -->/.exec(
        readme,
      );
    assert.ok(m?.[1], 'README has the marked example');
    await writeFile(script, m[1]);

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
});
