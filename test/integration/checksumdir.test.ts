/**
 * checksumdir against the reference GNU pipeline of the original script, byte
 * for byte, on a plain tree under /tmp and on a loop-mounted btrfs (nested
 * subvolume, tmpfs mounted inside), then `verify` on a changed tree.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../src/errors.js';
import { setLogger } from '../../src/log.js';
import type { Warning } from '../../src/log.js';
import { runChecksumdir } from '../../src/checksumdir/run-checksumdir.js';
import { verifyChecksumdir } from '../../src/checksumdir/verify-checksumdir.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const isRoot = process.getuid?.() === 0;
const required = process.env.BUTTERSINK_REQUIRE_INTEGRATION === '1';
/** The mount-point and device-file checks need root; skipped with the reason otherwise. */
const rootPrereq = integrationPrereqs({ root: true });

function sh(script: string, cwd?: string): string {
  return execFileSync('sh', ['-ec', script], {
    cwd,
    env: { ...process.env, PATH },
    encoding: 'latin1',
    maxBuffer: 1 << 28,
  });
}

function has(cmd: string): boolean {
  return (
    spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { ...process.env, PATH } }).status === 0
  );
}

/** The original script's pipeline, with LC_ALL=C for both sorts. */
function reference(dir: string, outDir: string, name: string): void {
  const fmt = '%M %n %4U %4G %TY-%Tm-%Td %TT %P\\n';
  sh(
    `TZ=UTC LC_ALL=C find -not -path "." -not \\( -type d -execdir mountpoint -q {} \\; \\) ` +
      `-printf "${fmt}" | LC_ALL=C sort --key 7 > '${outDir}/${name}.ls'\n` +
      `find -type f -exec sha256sum {} + | LC_ALL=C sort --key 2 > '${outDir}/${name}.files'`,
    dir,
  );
  sh(`sha256sum '${name}.ls' '${name}.files' > '${name}.sha256sum'`, outDir);
}

function patterned(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed | 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
  return buf;
}

/** Fills `root` with every kind of entry checksumdir must get right. */
function buildTree(root: string, big: { written: number; sparse: number }): void {
  mkdirSync(join(root, 'dir with space/sub'), { recursive: true });
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'small'), 'hello\n');
  writeFileSync(join(root, 'dir with space/sub/deep file'), patterned(70_000, 7));
  writeFileSync(join(root, 'written-big'), patterned(big.written, 3));
  writeFileSync(join(root, 'sparse-big'), 'head');
  truncateSync(join(root, 'sparse-big'), big.sparse);
  writeFileSync(join(root, 'back\\slash'), 'b');
  writeFileSync(join(root, 'new\nline'), 'n');
  writeFileSync(join(root, 'nl\nb c d e f g h'), 'seven fields after the newline');
  writeFileSync(join(root, 'cr\rname'), 'r');
  writeFileSync(join(root, ' leading space'), 's');
  writeFileSync(join(root, 'trailing\n'), 't');
  writeFileSync(join(root, 'ünïcødé ✓'), 'u');
  writeFileSync(Buffer.from(`${root}/latin1-\xe9\xff`, 'latin1'), 'invalid utf-8 name');
  writeFileSync(join(root, 'hard-a'), 'linked');
  linkSync(join(root, 'hard-a'), join(root, 'hard-b'));
  symlinkSync('small', join(root, 'link-to-file'));
  symlinkSync('dir with space', join(root, 'link-to-dir'));
  symlinkSync('nowhere', join(root, 'dangling'));
  writeFileSync(join(root, 'setuid'), '');
  chmodSync(join(root, 'setuid'), 0o4755);
  writeFileSync(join(root, 'setuid-noexec'), '');
  chmodSync(join(root, 'setuid-noexec'), 0o4644);
  writeFileSync(join(root, 'setgid'), '');
  chmodSync(join(root, 'setgid'), 0o2750);
  mkdirSync(join(root, 'sticky'));
  chmodSync(join(root, 'sticky'), 0o1777);
  mkdirSync(join(root, 'sticky-noexec'));
  chmodSync(join(root, 'sticky-noexec'), 0o1770);
  sh(`mkfifo fifo`, root);
  if (isRoot) sh(`mknod chardev c 1 3 && chown 1234:56789 small`, root);
  sh(`touch -h -d '2001-02-03 04:05:06.123456789' link-to-file small`, root);
  sh(`touch -d '1960-06-01 01:02:03.5' empty`, root);
}

/** Mounts a tmpfs on `dir` with a file in it (root only). Returns the mount point. */
function mountTmpfs(dir: string): string {
  mkdirSync(dir, { recursive: true });
  sh(`mount -t tmpfs -o size=8m tmpfs '${dir}'`);
  mkdirSync(join(dir, 'inside'));
  writeFileSync(join(dir, 'inside/on tmpfs'), 'tmpfs content');
  return dir;
}

function umount(dir: string): void {
  spawnSync('umount', ['-l', dir], { env: { ...process.env, PATH } });
}

function assertSameAsReference(dir: string, work: string, name: string, ourOut: string): void {
  const refOut = join(work, 'ref');
  mkdirSync(refOut, { recursive: true });
  reference(dir, refOut, name);
  for (const suffix of ['.ls', '.files', '.sha256sum']) {
    const ours = readFileSync(join(ourOut, name + suffix));
    const ref = readFileSync(join(refOut, name + suffix));
    assert.ok(
      ours.equals(ref),
      `${name}${suffix} differs from the reference:\n--- ours\n${ours.toString('latin1')}\n--- reference\n${ref.toString('latin1')}`,
    );
  }
}

async function checkVerify(dir: string, outDir: string, name: string): Promise<void> {
  const clean = await verifyChecksumdir({ dir, recordDir: outDir });
  assert.equal(clean.exitCode, 0, JSON.stringify(clean.differences));
  assert.equal(clean.identical, true);
  assert.equal(clean.recordsIntact, true);

  const target = join(dir, 'dir with space/sub/deep file');
  const data = readFileSync(target);
  data[12345] = data[12345]! ^ 1;
  writeFileSync(target, data);
  chmodSync(join(dir, 'small'), 0o600);
  writeFileSync(join(dir, 'dir with space/added'), 'new');
  unlinkSync(join(dir, 'hard-b'));

  const changed = await verifyChecksumdir({ dir, recordDir: outDir, name });
  assert.equal(changed.exitCode, 1);
  assert.equal(changed.identical, false);
  const d = changed.differences;
  assert.deepEqual(d.content, ['dir with space/sub/deep file']);
  assert.deepEqual(d.added, ['dir with space/added']);
  assert.deepEqual(d.removed, ['hard-b']);
  // hard-a lost a link; the parents of added/removed entries got new mtimes.
  for (const p of ['small', 'hard-a', 'dir with space', 'dir with space/sub/deep file']) {
    assert.ok(d.metadata.includes(p), `metadata should list ${p}: ${d.metadata.join(', ')}`);
  }
}

describe('checksumdir on a plain tree under /tmp', () => {
  let work = '';
  let mounted: string | undefined;
  const warnings: Warning[] = [];
  let restore: ReturnType<typeof setLogger> | undefined;
  before(() => {
    work = mkdtempSync('/tmp/checksumdir-test-');
    restore = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  });
  after(() => {
    if (mounted) umount(mounted);
    if (restore) setLogger(restore);
    rmSync(work, { recursive: true, force: true });
  });

  /** What the plain-tree run recorded, for the root-only checks below. */
  let plain: { mountPoints: string[]; special: string[]; ls: string } | undefined;

  test('outputs equal the reference pipeline byte for byte; verify finds each change', async () => {
    const dir = join(work, 'plain');
    mkdirSync(dir);
    buildTree(dir, { written: 12 << 20, sparse: 150 << 20 });
    if (isRoot) mounted = mountTmpfs(join(dir, 'mnt'));
    const out = join(work, 'out');
    mkdirSync(out);
    const result = await runChecksumdir({ dirs: [dir], outDir: out });
    assert.equal(result.exitCode, 0);
    const counts = result.dirs[0]!.counts;
    assert.ok(counts.special.includes('fifo'), counts.special.join(', '));
    assert.ok(warnings.some((w) => w.code === 'CHECKSUMDIR_SPECIAL'));
    assertSameAsReference(dir, work, 'plain', out);
    const ls = readFileSync(join(out, 'plain.ls'), 'latin1');
    plain = { mountPoints: counts.mountPoints, special: counts.special.sort(), ls };
    await checkVerify(dir, out, 'plain');
  });

  // The tree above gets a tmpfs mount and a device node only as root: these
  // checks are a test of their own so that, without root, they show as skipped
  // with the reason (and fail under BUTTERSINK_REQUIRE_INTEGRATION=1).
  test('records a mount point (not its directory entry) and a device file', rootPrereq, () => {
    assert.ok(plain, 'the plain-tree run above completed');
    assert.deepEqual(plain.mountPoints, ['mnt']);
    assert.deepEqual(plain.special, ['chardev', 'fifo']);
    assert.ok(!/ mnt$/m.test(plain.ls), 'the mount point itself is left out');
    assert.ok(/ mnt\/inside\/on tmpfs$/m.test(plain.ls), 'its contents are listed');
  });

  test('refuses to write into the directory it lists', async () => {
    const dir = join(work, 'refuse');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    await assert.rejects(runChecksumdir({ dirs: [dir], outDir: join(dir, 'sub') }), UsageError);
    await assert.rejects(runChecksumdir({ dirs: [dir], outDir: dir }), UsageError);
    await assert.rejects(
      runChecksumdir({ dirs: [join(work, 'missing')], outDir: work }),
      UsageError,
    );
    // A sibling whose name merely starts with the same letters is fine.
    mkdirSync(`${dir}-out`);
    const ok = await runChecksumdir({ dirs: [dir], outDir: `${dir}-out` });
    assert.equal(ok.exitCode, 0);
  });
});

const btrfsReason = !isRoot
  ? 'needs root (loop mount)'
  : !has('mkfs.btrfs') || !has('btrfs')
    ? 'needs btrfs-progs (mkfs.btrfs)'
    : !readFileSync('/proc/filesystems', 'latin1').includes('btrfs') && !has('modprobe')
      ? 'kernel has no btrfs'
      : undefined;
if (btrfsReason && required) throw new Error(`checksumdir btrfs test cannot run: ${btrfsReason}`);
if (btrfsReason) console.log(`# skipping checksumdir btrfs test: ${btrfsReason}`);

describe('checksumdir on a loop-mounted btrfs', { skip: btrfsReason ?? false }, () => {
  let work = '';
  let image = '';
  let mnt = '';
  let tmpfs: string | undefined;
  let restore: ReturnType<typeof setLogger> | undefined;
  before(() => {
    work = mkdtempSync('/tmp/checksumdir-btrfs-');
    image = join(mkdtempSync('/dev/shm/checksumdir-'), 'fs.img');
    mnt = join(work, 'mnt');
    mkdirSync(mnt);
    sh(
      `truncate -s 300M '${image}' && mkfs.btrfs -q '${image}' && mount -o loop '${image}' '${mnt}'`,
    );
    restore = setLogger({ warn: () => undefined, debug: () => undefined });
  });
  after(() => {
    if (tmpfs) umount(tmpfs);
    if (mnt && existsSync(mnt)) umount(mnt);
    if (restore) setLogger(restore);
    rmSync(join(image, '..'), { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  test('equals the reference with a nested subvolume and a tmpfs mounted inside', async () => {
    const dir = join(mnt, 'tree');
    mkdirSync(dir);
    buildTree(dir, { written: 110 << 20, sparse: 200 << 20 });
    sh(`btrfs -q subvolume create '${dir}/nested'`);
    writeFileSync(join(dir, 'nested/in subvolume'), patterned(5000, 11));
    tmpfs = mountTmpfs(join(dir, 'dir with space/mounted'));
    const out = join(work, 'out');
    mkdirSync(out);
    const result = await runChecksumdir({ dirs: [dir], outDir: out });
    assert.equal(result.exitCode, 0);
    const counts = result.dirs[0]!.counts;
    assert.deepEqual(counts.mountPoints, ['dir with space/mounted']);
    assert.ok(counts.bytes > 110 << 20);
    assertSameAsReference(dir, work, 'tree', out);
    const ls = readFileSync(join(out, 'tree.ls'), 'latin1');
    assert.ok(/^d\S+ .* nested$/m.test(ls), 'an unmounted subvolume is listed');
    assert.ok(!/ dir with space\/mounted$/m.test(ls));
    assert.ok(/ dir with space\/mounted\/inside\/on tmpfs$/m.test(ls));
    await checkVerify(dir, out, 'tree');
  });
});
