/**
 * What users see (issue 13), local btrfs: no silent no-ops, one-line errors
 * naming the fix, exit statuses (2 usage, 130/143 for SIGINT/SIGTERM), the
 * closing summary of a sync. Through the CLI, on real loop-mounted btrfs.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createBtrfs,
  deterministicBytes,
  makeTree,
  snapshot,
  subvolume,
} from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli, startCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

/** Asserts `stderr` is exactly one line, without a stack trace. */
function oneLine(stderr: string): void {
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

/** Polls `check` every 25 ms (at most 20 s); fails with `what` when it never holds. */
async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 800; i++) {
    if (check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting until ${what}`);
}

describe('CLI messages: local btrfs', { skip }, () => {
  let A: BtrfsFs;
  let snaps: string;
  let dst: string;
  let live: string;

  before(async () => {
    A = await createBtrfs({ size: 1 << 30 });
    live = await subvolume(join(A.mnt, 'live'));
    snaps = join(A.mnt, 'snaps');
    dst = join(A.mnt, 'dst');
    await Promise.all([mkdir(snaps), mkdir(dst)]);
    for (let step = 0; step < 3; step++) {
      await makeTree(live, step, { bigMiB: 1 });
      await snapshot(live, join(snaps, `2024-01-0${step + 1}`));
    }
    // A read-write subvolume among the snapshots: never sent, but said so.
    await subvolume(join(snaps, 'work'));
  });
  after(async () => A?.cleanup());

  it('a snapshot written with a trailing slash is refused, naming the fix (exit 2)', async () => {
    const r = await runCli([`${join(snaps, '2024-01-03')}/`, `${dst}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: .*\/snaps\/2024-01-03\/: a read-only snapshot, not a directory of snapshots; drop the trailing '\/' to name this one snapshot \(.*\/snaps\/2024-01-03\)$/,
    );
    oneLine(r.stderr);
    assert.doesNotMatch(r.stdout, /nothing to transfer/);
  });

  it('read-write subvolumes among the snapshots get one warning naming them', async () => {
    const r = await runCli(['-q', '-n', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: warning: .*\/snaps: ignoring 1 read-write subvolume\(s\) work \(make snapshots with btrfs subvolume snapshot -r\)$/m,
    );
    assert.equal(r.stderr.match(/read-write/g)?.length, 1, r.stderr);
  });

  it('a read-write subvolume given as a source directory: nothing to send, said in one line (exit 2)', async () => {
    const r = await runCli(['-n', `${live}/`, `${dst}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: .*\/live\/: no read-only snapshots here; nothing to send \(make snapshots with btrfs subvolume snapshot -r, or check the path\)$/,
    );
    oneLine(r.stderr);
  });

  it('an empty source directory says why nothing happens (exit 2), and -d deletes nothing', async () => {
    const empty = join(A.mnt, 'empty');
    const kept = join(A.mnt, 'kept');
    await Promise.all([mkdir(empty), mkdir(kept)]);
    await subvolume(join(empty, 'rw'));
    await snapshot(join(snaps, '2024-01-01'), join(kept, 'old'));
    const r = await runCli(['-d', `${empty}/`, `${kept}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: .*\/empty\/: no read-only snapshots here, only read-write subvolume\(s\) rw; nothing to send \(make snapshots with btrfs subvolume snapshot -r, or check the path\)$/,
    );
    oneLine(r.stderr);
    assert.equal(r.stdout, '', 'no plan, no "nothing to do"');
    assert.deepEqual(await readdir(kept), ['old'], 'nothing deleted');
  });

  it('a read-write subvolume named as the source is called read-write, not missing (exit 2)', async () => {
    const r = await runCli([join(snaps, 'work'), `${dst}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: .*\/snaps\/work: a read-write subvolume, not a snapshot; only read-only snapshots can be sent \(make one with btrfs subvolume snapshot -r /,
    );
    assert.doesNotMatch(r.stderr, /not found|trailing/);
    oneLine(r.stderr);
  });

  it('a directory of snapshots without its trailing slash: one line with the fix (exit 2)', async () => {
    const r = await runCli([snaps, `${dst}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: snapshot 'snaps' not found in the source; a source without a trailing '\/' is one snapshot; for a directory of snapshots write .*\/snaps\/$/,
    );
    oneLine(r.stderr);
  });

  it('listing one snapshot lists it; a name with nothing at it says so', async () => {
    const one = await runCli([join(snaps, '2024-01-02')]);
    assert.equal(one.exitCode, 0, one.stderr);
    assert.match(one.stdout, /^\S+ {2}2024-01-02 {2}/m);
    assert.match(one.stdout, /^TOTAL: 1 snapshot\(s\)/m);
    const none = await runCli([join(snaps, '2024-01-09')]);
    assert.equal(none.exitCode, 0, none.stderr);
    assert.match(
      none.stderr,
      /^buttersink: warning: .*\/snaps\/2024-01-09: nothing at this path \(no snapshot 2024-01-09, nor any below it\)$/,
    );
    oneLine(none.stderr);
  });

  it('-l in a missing directory: one line naming the fix, no stack trace (exit 2)', async () => {
    const r = await runCli(['-l', '/nonexistent/dir/log', `${snaps}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.equal(
      r.stderr,
      'buttersink: --logfile /nonexistent/dir/log: directory /nonexistent/dir does not exist; create it or give a path in an existing directory',
    );
    assert.equal(r.stdout, '');
  });

  it('-v adds the stack trace (with its causes) after the one line', async () => {
    const r = await runCli(['-v', '/nonexistent/', `${dst}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    const [first, ...rest] = r.stderr.split('\n');
    assert.equal(first, 'buttersink: /nonexistent: no such directory');
    assert.match(rest.join('\n'), /^LocationError: \/nonexistent: no such directory\n\s+at /);
    assert.match(rest.join('\n'), /\nCaused by: Error: ENOENT: /);
  });

  it('a sync ends with a summary line: snapshots, bytes, seconds', async () => {
    const target = join(A.mnt, 'summary');
    await mkdir(target);
    const r = await runCli(['-q', `${snaps}/`, `${target}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^sent 2024-01-01 \(full\): /m);
    const last = r.stdout.trim().split('\n').at(-1);
    assert.match(last ?? '', /^3 snapshot\(s\), \d+\.\d (KiB|MiB) transferred in \d+\.\d s$/);
    assert.deepEqual((await readdir(target)).sort(), ['2024-01-01', '2024-01-02', '2024-01-03']);
  });
});

describe('CLI exit status when stopped by a signal', { skip }, () => {
  let A: BtrfsFs;
  let bigSnaps: string;

  before(async () => {
    A = await createBtrfs({ size: 1 << 30 });
    const bigLive = await subvolume(join(A.mnt, 'big-live'));
    await writeFile(join(bigLive, 'big'), deterministicBytes(300 << 20, 'signal'));
    bigSnaps = join(A.mnt, 'big-snaps');
    await mkdir(bigSnaps);
    await snapshot(bigLive, join(bigSnaps, 'huge'));
  });
  after(async () => A?.cleanup());

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} mid-transfer exits ${code} after leaving only a partial (a .part, or a marked in-place receive)`, async () => {
      const dst = join(A.mnt, `${signal}-target`);
      await mkdir(dst);
      const child = startCli(['-e', `${bigSnaps}/`, `${dst}/`]);
      // The unfused path receives into huge.part; the fused one in place under a marker.
      const marker = join(dst, '.huge.receiving');
      await waitFor(
        'the receive started',
        () => existsSync(join(dst, 'huge.part')) || existsSync(join(dst, 'huge')),
      );
      child.kill(signal);
      const r = await child;
      assert.equal(r.exitCode, code, String(r.stderr));
      assert.match(
        String(r.stderr),
        new RegExp(
          `^buttersink: ${signal}: stopping \\(the transfer under way is left as a partial that never looks complete; the next run replaces or resumes it\\)$`,
          'm',
        ),
      );
      assert.doesNotMatch(String(r.stderr), /\n\s+at /, 'no stack trace');
      assert.ok(
        !existsSync(join(dst, 'huge')) || existsSync(marker),
        'nothing under the final name unless marked as receiving',
      );
      const listed = await runCli([`${dst}/`]);
      assert.match(listed.stdout, /^TOTAL: 0 snapshot\(s\)$/m, 'no snapshot listed');
      assert.match(listed.stdout, /^partial: \S*\/huge(\.part)?$/m, 'listed as a partial');
    });
  }
});
