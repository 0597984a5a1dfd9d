/**
 * kill -9 on the fused path (issue 12 item 1): local btrfs → btrfs with `btrfs
 * send` joined straight to `btrfs receive`, the snapshot received in place
 * under a `.<name>.receiving` marker. The CLI runs as a child in its own
 * process group and is killed with SIGKILL at several points:
 *
 * - during the receive, the CLI alone: its btrfs children are orphans that run
 *   on and complete the receive; the marker stays;
 * - during the receive, the whole group (CLI and children, as a crash would):
 *   a read-write subvolume under its final name, and the marker;
 * - after the receive, before the marker is removed (the subvolume is
 *   read-only, the marker still there);
 * - after the marker was written, before `btrfs receive` created anything (the
 *   state is made by hand: the window is too short to hit with a signal).
 *
 * After each: nothing is listed as a snapshot, the partial is listed as one,
 * and a plain rerun converges: the snapshot appears complete exactly once
 * (read-only, received UUID, identical content), no marker, no partial left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, constants, mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { deleteSubvolume } from '../../src/btrfs/subvolume.js';
import { createBtrfs, deterministicBytes, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { REPO, binCommand, runCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { treeDigest } from '../fixtures/tree-digest.js';
import { waitFor } from '../fixtures/wait-for.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });
const MiB = 1024 * 1024;

/** The CLI in a process group of its own; `done` settles when it has exited. */
function startGroup(args: readonly string[]) {
  const [node, ...rest] = binCommand('buttersink');
  const env = { ...process.env };
  delete env['BUTTERSINK_NO_FUSE'];
  const child = spawn(node!, [...rest, ...args], {
    cwd: REPO,
    env,
    stdio: 'ignore',
    detached: true,
  });
  const done = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { pid: child.pid!, done };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The entries of `dir` but the run lock's own files (`.buttersink.lock*`). */
async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((e) => !e.startsWith('.buttersink.lock'));
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function isReadOnly(path: string): Promise<boolean> {
  return access(path, constants.W_OK).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'EROFS',
  );
}

describe('kill -9 on the fused btrfs → btrfs path', { skip }, () => {
  let A: BtrfsFs;
  let B: BtrfsFs;
  let snaps: string;
  let want: { uuid: string; digest: string };
  let caseNo = 0;

  before(async () => {
    delete process.env['BUTTERSINK_NO_FUSE'];
    [A, B] = await Promise.all([createBtrfs({ size: 1 << 30 }), createBtrfs({ size: 1 << 30 })]);
    const live = await subvolume(join(A.mnt, 'live'));
    await writeFile(join(live, 'big'), deterministicBytes(300 * MiB, 'fused-kill'));
    await writeFile(join(live, 'small'), 'hello\n');
    snaps = join(A.mnt, 'snaps');
    await mkdir(snaps);
    const s = await snapshot(live, join(snaps, 'huge'));
    want = { uuid: (await subvolumeShow(s)).uuid!, digest: await treeDigest(s) };
  });
  after(() => Promise.all([A?.cleanup(), B?.cleanup()]));

  /** A fresh destination directory. */
  async function dest(): Promise<string> {
    const dir = join(B.mnt, `case-${++caseNo}`);
    await mkdir(dir);
    return dir;
  }

  /** Nothing listed as a snapshot, the partial listed as one; then a rerun converges. */
  async function assertConverges(dst: string): Promise<void> {
    const listing = await runCli([`${dst}/`]);
    assert.equal(listing.exitCode, 0, listing.stderr);
    assert.match(listing.stdout, /^TOTAL: 0 snapshot/m, 'the partial is not listed as a snapshot');
    assert.match(listing.stdout, /partial: .*huge/, listing.stdout);

    // Space of a deleted partial is freed in the background: no space check.
    const rerun = await runCli(['-q', '--no-space-check', `${snaps}/`, `${dst}/`]);
    assert.equal(rerun.exitCode, 0, rerun.stderr);
    assert.deepEqual(await entries(dst), ['huge'], 'exactly the snapshot: no marker, no .part');
    const show = await subvolumeShow(join(dst, 'huge'));
    assert.equal(show.readOnly, true);
    assert.equal(show.receivedUuid, want.uuid);
    assert.equal(await treeDigest(join(dst, 'huge')), want.digest, 'content identical');
    const again = await runCli([`${dst}/`]);
    assert.match(again.stdout, /^TOTAL: 1 snapshot/m);
    assert.doesNotMatch(again.stdout, /partial:/);
    await deleteSubvolume(join(dst, 'huge')); // room for the next case
  }

  /** Starts the CLI, waits for `point`, kills the CLI (or its whole group), waits for the group. */
  async function killAt(
    dst: string,
    point: () => boolean | Promise<boolean>,
    what: string,
    group: boolean,
  ): Promise<void> {
    const run = startGroup(['-q', '-e', `${snaps}/`, `${dst}/`]);
    await waitFor(point, { what, deadlineMs: 120_000, everyMs: 1 });
    process.kill(group ? -run.pid : run.pid, 'SIGKILL');
    await run.done;
    // Orphaned btrfs send/receive run on (fused: nothing breaks their pipe): wait for them.
    await waitFor(() => !groupAlive(run.pid), { what: 'the group to exit', deadlineMs: 120_000 });
  }

  const receiving = (dst: string) => () =>
    existsSync(join(dst, '.huge.receiving')) && fileSize(join(dst, 'huge', 'big')) > 0;

  it('SIGKILL of the CLI alone mid-receive: the orphans finish, the marker keeps it partial', async () => {
    const dst = await dest();
    await killAt(dst, receiving(dst), 'data arriving in huge', false);
    assert.ok(existsSync(join(dst, '.huge.receiving')), 'the marker outlives the killed run');
    await assertConverges(dst);
  });

  it('SIGKILL of the CLI and its btrfs children mid-receive: a read-write partial, converges', async () => {
    const dst = await dest();
    await killAt(dst, receiving(dst), 'data arriving in huge', true);
    assert.ok(existsSync(join(dst, '.huge.receiving')));
    assert.equal(await isReadOnly(join(dst, 'huge')), false, 'the receive was cut short');
    await assertConverges(dst);
  });

  it('SIGKILL after the receive, before the marker is removed: still a partial, converges', async (t) => {
    const dst = await dest();
    const marker = join(dst, '.huge.receiving');
    let caught = false;
    await killAt(
      dst,
      async () => {
        if (!existsSync(join(dst, 'huge')) || !(await isReadOnly(join(dst, 'huge')))) return false;
        caught = existsSync(marker);
        return true;
      },
      'huge to turn read-only',
      true,
    );
    if (!caught) {
      // The marker went first: the run completed; nothing to converge from.
      t.diagnostic('the run removed its marker before the kill landed');
      assert.deepEqual(await entries(dst), ['huge']);
      return;
    }
    assert.ok(existsSync(marker));
    await assertConverges(dst);
  });

  it('a marker without its subvolume (killed before btrfs receive created it) is a partial; -d and reruns clear it', async () => {
    const dst = await dest();
    await writeFile(join(dst, '.huge.receiving'), 'receiving snapshot\n');
    const listing = await runCli([`${dst}/`]);
    assert.match(listing.stdout, /partial: .*\.huge\.receiving/, listing.stdout);
    const clean = await runCli(['-d', `${dst}/`]);
    assert.equal(clean.exitCode, 0, clean.stderr);
    assert.deepEqual(await entries(dst), []);
    await writeFile(join(dst, '.huge.receiving'), 'receiving snapshot\n');
    await assertConverges(dst);
  });
});
