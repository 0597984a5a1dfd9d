/**
 * Local btrfs → btrfs sync, end to end through the CLI and the library, on
 * real loop-mounted filesystems (issue 3's "Must show").
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { listSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import {
  createBtrfs,
  deterministicBytes,
  makeTree,
  snapshot,
  subvolume,
} from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli, startCli } from '../fixtures/cli.js';
import { pidsWithCommandLine } from '../fixtures/sshd.js';
import { waitFor } from '../fixtures/wait-for.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { ownReadBytes } from '../fixtures/own-io.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

function store(dir: string): BtrfsStore {
  return new BtrfsStore(parseLocation(dir.endsWith('/') ? dir : `${dir}/`) as BtrfsLocation);
}

async function assertSameSnapshot(src: string, dst: string): Promise<void> {
  const s = await subvolumeShow(src);
  const d = await subvolumeShow(dst);
  assert.equal(d.readOnly, true, `${dst} is read-only`);
  assert.equal(d.receivedUuid, s.receivedUuid ?? s.uuid, `${dst} received UUID`);
  assert.equal(await treeDigest(dst), await treeDigest(src), `${dst} content equals ${src}`);
}

/** Size of `path` in bytes, 0 while it does not exist yet. */
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Live processes (btrfs send/receive of a run) whose command line names `src` or `dst`. */
function btrfsChildrenOf(src: string, dst: string): number[] {
  return [...pidsWithCommandLine(src), ...pidsWithCommandLine(dst)];
}

/** Every live descendant of `pid` (children, their children, …), from /proc. */
function descendants(pid: number): { pid: number; cmdline: string }[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out: { pid: number; cmdline: string }[] = [];
  const isBelow = (p: number): boolean => {
    for (let q = parent.get(p); q !== undefined && q > 1; q = parent.get(q)) {
      if (q === pid) return true;
    }
    return false;
  };
  for (const p of parent.keys()) {
    if (!isBelow(p)) continue;
    try {
      out.push({ pid: p, cmdline: readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ') });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** True while `pid` exists and is not a zombie (exited, waiting to be reaped). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// Both transfer paths: fused (the default here: `btrfs send` straight into `btrfs
// receive` by an OS pipe, received in place under a `.NAME.receiving` marker) and
// the stage pipeline (received as NAME.part, renamed when committed).
for (const noFuse of [false, true]) {
  /** What a killed or failed transfer of `name` leaves: the .part, or the marked subvolume. */
  const partialOf = (name: string) => (noFuse ? `${name}.part` : name);
  /** True when `dir` holds only what a failed transfer of `name` may leave. */
  const onlyPartial = (entries: readonly string[], name: string) =>
    entries.every((e) =>
      noFuse ? e === `${name}.part` : e === name || e === `.${name}.receiving`,
    );
  describe(`btrfs → btrfs sync${noFuse ? ' (BUTTERSINK_NO_FUSE=1)' : ''}`, { skip }, () => {
    let A: BtrfsFs;
    let B: BtrfsFs;
    let C: BtrfsFs;
    let live: string;
    let snaps: string;
    let backup: string;
    let cascade: string;

    before(async () => {
      // The CLI children inherit it; sync() in this process reads it too.
      if (noFuse) process.env['BUTTERSINK_NO_FUSE'] = '1';
      else delete process.env['BUTTERSINK_NO_FUSE'];
      [A, B, C] = await Promise.all([
        createBtrfs({ size: 1 << 30 }),
        createBtrfs({ size: 1 << 30 }),
        createBtrfs({ size: 1 << 30 }),
      ]);
      live = await subvolume(join(A.mnt, 'live'));
      snaps = join(A.mnt, 'snaps');
      backup = join(B.mnt, 'backup');
      cascade = join(C.mnt, 'cascade');
      await Promise.all([mkdir(snaps), mkdir(backup), mkdir(cascade)]);
      for (let step = 0; step < 4; step++) {
        await makeTree(live, step, { bigMiB: 32 });
        await snapshot(live, join(snaps, `2024-01-0${step + 1}`));
      }
      // One big snapshot for the kill, interrupt and full-disk tests.
      const bigLive = await subvolume(join(A.mnt, 'big-live'));
      await writeFile(join(bigLive, 'big'), deterministicBytes(400 << 20, 'kill'));
      await mkdir(join(A.mnt, 'big-snaps'));
      await snapshot(bigLive, join(A.mnt, 'big-snaps', 'huge'));
    });
    after(async () => {
      delete process.env['BUTTERSINK_NO_FUSE'];
      await Promise.all([A?.cleanup(), B?.cleanup(), C?.cleanup()]);
    });

    it('syncs a chain of 4 snapshots: read-only, received UUIDs, identical content', async () => {
      const r = await runCli(['-q', `${snaps}/`, `${backup}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /Optimal synchronization: 4 transfers \(1 full, 3 incremental\)/);
      for (let i = 1; i <= 4; i++) {
        await assertSameSnapshot(join(snaps, `2024-01-0${i}`), join(backup, `2024-01-0${i}`));
      }
    });

    it('a second run transfers nothing', async () => {
      const r = await runCli([`${snaps}/`, `${backup}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /nothing to transfer/);
      assert.doesNotMatch(r.stdout, /^sent /m);
    });

    it('lists the destination with UUIDs and paths', async () => {
      const r = await runCli([`${backup}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
      const src = await subvolumeShow(join(snaps, '2024-01-02'));
      assert.match(r.stdout, new RegExp(`^${src.uuid}  2024-01-02 `, 'm'));
      assert.match(r.stdout, /^TOTAL: 4 snapshot\(s\)/m);
    });

    it('-n changes nothing', async () => {
      await makeTree(live, 4, { bigMiB: 32 });
      await snapshot(live, join(snaps, '2024-01-05'));
      const before = (await listSubvolumes(B.mnt)).map((s) => s.path);
      const r = await runCli(['-n', `${snaps}/`, `${backup}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /2024-01-05 from 2024-01-04/);
      assert.match(r.stdout, /dry run: nothing changed/);
      assert.deepEqual(
        (await listSubvolumes(B.mnt)).map((s) => s.path),
        before,
      );
    });

    it('a new snapshot goes over incrementally (bytes sent ≪ full)', async () => {
      const report = await sync(store(snaps), store(backup));
      assert.equal(report.transferred.length, 1);
      const t = report.transferred[0]!;
      assert.equal(t.transfer.to.path, '2024-01-05');
      assert.equal(t.transfer.from?.path, '2024-01-04');
      assert.equal(t.fused, !noFuse, 'no-op stages left out unless BUTTERSINK_NO_FUSE=1');
      // The full snapshot holds > 32 MiB; the step changed ~70 KB of data.
      assert.ok(t.bytes < 1_000_000, `incremental sent ${t.bytes} bytes`);
      await assertSameSnapshot(join(snaps, '2024-01-05'), join(backup, '2024-01-05'));
    });

    it('a cascade A → B → C keeps A’s UUIDs, and A → C goes incrementally from C’s copy', async () => {
      const r = await runCli(['-q', `${backup}/`, `${cascade}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
      for (let i = 1; i <= 5; i++) {
        const a = await subvolumeShow(join(snaps, `2024-01-0${i}`));
        const c = await subvolumeShow(join(cascade, `2024-01-0${i}`));
        assert.equal(c.receivedUuid, a.uuid);
      }
      await makeTree(live, 5, { bigMiB: 32 });
      await snapshot(live, join(snaps, '2024-01-06'));
      const report = await sync(store(snaps), store(cascade));
      assert.equal(report.transferred.length, 1);
      assert.equal(report.transferred[0]!.transfer.from?.path, '2024-01-05');
      assert.ok(report.transferred[0]!.bytes < 1_000_000);
      await assertSameSnapshot(join(snaps, '2024-01-06'), join(cascade, '2024-01-06'));
    });

    it('-d removes what the source lacks', async () => {
      const { deleteSubvolume } = await import('../../src/btrfs/subvolume.js');
      await deleteSubvolume(join(snaps, '2024-01-01'));
      const r = await runCli(['-q', '-d', `${snaps}/`, `${backup}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /deleted 2024-01-01/);
      assert.equal(existsSync(join(backup, '2024-01-01')), false);
      assert.equal(existsSync(join(backup, '2024-01-06')), true);
    });

    it('syncs one snapshot when the source has no trailing slash', async () => {
      const one = join(C.mnt, 'one');
      await mkdir(one);
      const r = await runCli(['-q', join(snaps, '2024-01-03'), `${one}/`]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.deepEqual(await readdir(one), ['2024-01-03']);
      await assertSameSnapshot(join(snaps, '2024-01-03'), join(one, '2024-01-03'));
    });

    it('no stream byte passes through this process on the fused path (and all of them otherwise)', async () => {
      const bigSnaps = join(A.mnt, 'big-snaps');
      const dst = join(C.mnt, 'through-node');
      await mkdir(dst);
      const size = 400 << 20;
      let last: { bytes: number; done: boolean } | undefined;
      const before = ownReadBytes();
      try {
        const report = await sync(store(bigSnaps), store(dst), {
          estimate: true,
          onProgress: (_t, p) => (last = p),
        });
        const through = ownReadBytes() - before;
        if (noFuse) assert.ok(through >= size, `read ${through} bytes`);
        else assert.ok(through < size / 20, `this process read ${through} of ${size} bytes`);
        const t = report.transferred[0]!;
        assert.ok(t.bytes >= size && t.bytes < size * 1.1, `counted ${t.bytes} bytes`);
        assert.equal(last?.done, true);
        assert.equal(last?.bytes, t.bytes, 'the final progress report carries the count');
        assert.deepEqual(await readdir(dst), ['huge']);
        await assertSameSnapshot(join(bigSnaps, 'huge'), join(dst, 'huge'));
      } finally {
        // Room on C for the tests after this one.
        const { deleteSubvolume } = await import('../../src/btrfs/subvolume.js');
        await deleteSubvolume(join(dst, 'huge')).catch(() => undefined);
      }
    });

    it('SIGKILL mid-receive leaves no snapshot under its final name; -d cleans the partial; the rerun completes', async () => {
      const bigSnaps = join(A.mnt, 'big-snaps');
      const dst = join(B.mnt, 'kill-target');
      await mkdir(dst);
      const child = startCli(['-e', `${bigSnaps}/`, `${dst}/`]);
      const partial = join(dst, partialOf('huge'));
      await waitFor(() => fileSize(join(partial, 'big')) > 0, {
        what: `the receive to write data into ${partialOf('huge')}`,
        deadlineMs: 60_000,
      });
      child.kill('SIGKILL');
      await child;
      // The orphaned btrfs send/receive die on their broken pipes (fused: run to their
      // end, nothing breaks their pipe); -d must not race them.
      await waitFor(() => btrfsChildrenOf(bigSnaps, dst).length === 0, {
        what: 'the orphaned btrfs send/receive to exit',
        deadlineMs: 120_000,
      });
      if (noFuse)
        assert.equal(existsSync(join(dst, 'huge')), false, 'nothing under the final name');
      else assert.ok(existsSync(join(dst, '.huge.receiving')), 'the marker stays');

      const listing = await runCli([`${dst}/`]);
      assert.equal(listing.exitCode, 0, listing.stderr);
      assert.match(listing.stdout, /^TOTAL: 0 snapshot/m);
      const listed = new RegExp(`partial: .*${partialOf('huge').replace('.', '\\.')}\\b`);
      assert.match(listing.stdout, listed);
      const dry = await runCli(['-d', '-n', `${dst}/`]);
      assert.equal(dry.exitCode, 0, dry.stderr);
      assert.match(dry.stdout, /partial: .* \(would delete\)/);
      assert.equal(existsSync(partial), true, '-n keeps the partial');
      const clean = await runCli(['-d', `${dst}/`]);
      assert.equal(clean.exitCode, 0, clean.stderr);
      assert.equal(existsSync(partial), false, '-d removed the partial');
      assert.deepEqual(await readdir(dst), [], '-d removed the marker too');

      // The deleted partial (all 400 MiB when fused) is freed in the background.
      const rerun = await runCli(['-q', '--no-space-check', `${bigSnaps}/`, `${dst}/`]);
      assert.equal(rerun.exitCode, 0, rerun.stderr);
      await assertSameSnapshot(join(bigSnaps, 'huge'), join(dst, 'huge'));
    });

    it('a full destination disk fails with a one-line error and leaves only a partial', async () => {
      const small = await createBtrfs({ size: 256 << 20 });
      try {
        // Past the check before sending: this is about a disk filling up mid-stream.
        const r = await runCli([
          '-q',
          '-e',
          '--no-space-check',
          `${join(A.mnt, 'big-snaps')}/`,
          `${small.mnt}/`,
        ]);
        assert.equal(r.exitCode, 1);
        assert.match(r.stderr, /^buttersink: huge: .*(No space left|space)/m);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        if (noFuse) assert.equal(existsSync(join(small.mnt, 'huge')), false);
        assert.ok(onlyPartial(await readdir(small.mnt), 'huge'), 'only the partial');
        const listing = await runCli([`${small.mnt}/`]);
        assert.match(listing.stdout, /^TOTAL: 0 snapshot/m);
      } finally {
        await small.cleanup();
      }
    });

    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      it(`${sig} mid-transfer: non-zero exit, no btrfs send/receive left, only a partial`, async () => {
        const src = join(A.mnt, 'big-snaps');
        const dst = join(C.mnt, `${sig.toLowerCase()}-target`);
        await mkdir(dst);
        const child = startCli(['-e', `${src}/`, `${dst}/`]);
        // Mid-transfer: data is arriving in huge.part and both children run.
        const running = await waitFor(
          () => {
            const tree = descendants(child.pid!);
            const names = tree.map((p) => p.cmdline).join('\n');
            return fileSize(join(dst, partialOf('huge'), 'big')) > 0 &&
              names.includes('btrfs send') &&
              names.includes('btrfs receive')
              ? tree
              : undefined;
          },
          { what: 'btrfs send and receive to be transferring', deadlineMs: 60_000 },
        );
        child.kill(sig);
        // A CLI that waits forever on a child it did not stop fails here, not by hanging.
        const exited = await Promise.race([
          child.then(() => true),
          sleep(60_000).then(() => false),
        ]);
        if (!exited) {
          for (const p of [...descendants(child.pid!), { pid: child.pid! }]) {
            try {
              process.kill(p.pid, 'SIGKILL');
            } catch {
              // gone
            }
          }
          await child;
          assert.fail(`the CLI did not exit within 60 s of ${sig}`);
        }
        const r = await child;
        assert.notEqual(r.exitCode, 0, `exit code ${r.exitCode}`);
        assert.match(String(r.stderr), new RegExp(sig));
        // When the CLI has exited, every process it started has too.
        const left = running.filter((p) => isAlive(p.pid));
        assert.deepEqual(left, [], 'no child process outlives the CLI');
        assert.deepEqual(btrfsChildrenOf(src, dst), [], 'nothing else works on these paths');
        // Only the partial, or nothing: never a snapshot under its final name.
        const there = await readdir(dst);
        assert.ok(onlyPartial(there, 'huge'), there.join(', '));
        const listing = await runCli([`${dst}/`]);
        assert.match(listing.stdout, /^TOTAL: 0 snapshot/m);
        // The killed run's .part (up to 400 MiB on this 1 GiB filesystem, more the faster
        // the transfer) counts as used until the rerun replaces it: not this test's subject.
        const rerun = await runCli(['-q', '--no-space-check', `${src}/`, `${dst}/`]);
        assert.equal(rerun.exitCode, 0, rerun.stderr);
        assert.deepEqual(await readdir(dst), ['huge']);
      });
    }
  });
}

describe('buttersink bad input', { skip }, () => {
  let A: BtrfsFs;
  before(async () => {
    A = await createBtrfs();
    await mkdir(join(A.mnt, 'snaps'));
    await mkdir(join(A.mnt, 'dst'));
  });
  after(async () => A?.cleanup());

  const cases: [string, string[], number, RegExp][] = [
    ['a missing source', ['/nonexistent/', '/tmp/'], 2, /\/nonexistent: no such directory/],
    ['an unknown scheme', ['ftp://host/x/', '/tmp/'], 2, /unknown scheme/],
    ['no arguments', [], 2, /missing <dst>/],
    ['a bad option value', ['--part-size', '1', '/a/', '/b/'], 2, /part-size/],
  ];
  for (const [what, args, code, msg] of cases) {
    it(`${what}: one-line error, exit ${code}`, async () => {
      const r = await runCli(args);
      assert.equal(r.exitCode, code, r.stderr);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  it('a path not on btrfs', async () => {
    const r = await runCli(['/proc/', `${join(A.mnt, 'dst')}/`]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /\/proc: not on a btrfs filesystem/);
  });

  it('a source directory written without its trailing slash gets the hint', async () => {
    const r = await runCli([join(A.mnt, 'snaps'), `${join(A.mnt, 'dst')}/`]);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /trailing '\/'/);
  });

  it('a destination without trailing slash is refused', async () => {
    const r = await runCli([`${join(A.mnt, 'snaps')}/`, join(A.mnt, 'dst')]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /add the trailing '\/'/);
  });

  it('a non-root user is told to be root', async () => {
    const r = await runCli([`${join(A.mnt, 'snaps')}/`], 'buttersink', {
      env: { ...process.env, BUTTERSINK_TEST_UID: '' } as Record<string, string>,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    const nobody = await import('execa').then(({ execa }) =>
      execa(
        'setpriv',
        [
          '--reuid=nobody',
          '--regid=nogroup',
          '--clear-groups',
          process.execPath,
          '--import',
          'tsx',
          'src/bin/buttersink.ts',
          `${join(A.mnt, 'snaps')}/`,
        ],
        { reject: false, cwd: new URL('../..', import.meta.url).pathname },
      ),
    );
    assert.equal(nobody.exitCode, 1, nobody.stderr);
    assert.match(nobody.stderr, /must be root to access a btrfs filesystem/);
  });
});
