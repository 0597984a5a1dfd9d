/**
 * The companion commands through their CLI: `btrfslist` (text and --json,
 * quotas on and off) and `checksumdir` (record, verify, exit codes).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { enableQuota } from '../../src/btrfs/qgroup.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import type { BtrfsListing } from '../../src/btrfslist.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

describe('btrfslist and checksumdir CLI', { skip }, () => {
  let fs: BtrfsFs;
  let out: string;
  before(async () => {
    fs = await createBtrfs();
    const live = await subvolume(join(fs.mnt, 'live'));
    await makeTree(live, 0, { bigMiB: 1 });
    await snapshot(live, join(fs.mnt, 'snap one'));
    out = await mkdtemp(join(tmpdir(), 'buttersink-records-'));
  });
  after(async () => {
    await fs?.cleanup();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('btrfslist prints every subvolume with UUIDs and flags', async () => {
    const r = await runCli([fs.mnt], 'btrfslist');
    assert.equal(r.exitCode, 0, r.stderr);
    const snap = await subvolumeShow(join(fs.mnt, 'snap one'));
    assert.match(r.stdout, /^snap one {2}\[id \d+, read-only\]/m);
    assert.match(r.stdout, new RegExp(`uuid ${snap.uuid}  parent ${snap.parentUuid}`));
    assert.match(r.stdout, /Quotas: disabled/);
    assert.match(r.stdout, /^2 subvolume\(s\)$/m);
  });

  it('btrfslist --json gives sizes once quotas are on', async () => {
    await enableQuota(fs.mnt);
    const r = await runCli(['--json', fs.mnt], 'btrfslist');
    assert.equal(r.exitCode, 0, r.stderr);
    const listing = JSON.parse(r.stdout) as BtrfsListing;
    assert.equal(listing.quotasEnabled, true);
    const snap = listing.subvolumes.find((s) => s.path === 'snap one')!;
    assert.equal(snap.readOnly, true);
    assert.ok((snap.totalSize ?? 0) > 1_000_000, `total size ${snap.totalSize}`);
  });

  it('btrfslist on a path that is not btrfs fails with one line', async () => {
    const r = await runCli(['/proc'], 'btrfslist');
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /^btrfslist: .*not .*btrfs/m);
  });

  it('checksumdir records, verifies, and reports a change with exit 1', async () => {
    const live = join(fs.mnt, 'live');
    const rec = await runCli(['-q', live], 'checksumdir', { cwd: out });
    assert.equal(rec.exitCode, 0, rec.stderr);
    const same = await runCli(['--verify', '--records', out, live], 'checksumdir');
    assert.equal(same.exitCode, 0, same.stderr);
    assert.match(same.stdout, /identical/);
    await writeFile(join(live, 'a.txt'), 'changed\n');
    const diff = await runCli(['--verify', '--records', out, live], 'checksumdir');
    assert.equal(diff.exitCode, 1);
    assert.match(diff.stdout, /content\s+a\.txt/);
  });

  it('checksumdir refuses to write inside the directory it records', async () => {
    const live = join(fs.mnt, 'live');
    const r = await runCli([live], 'checksumdir', { cwd: live });
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /checksumdir: /);
  });
});
