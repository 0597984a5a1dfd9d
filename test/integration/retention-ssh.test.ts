/**
 * `--keep` on an SSH destination, through the CLI against a real sshd on
 * 127.0.0.1: the remote deletes exactly the snapshots the policy drops (what
 * `-n` said it would), under the remote's lock, and the kept copies are intact.
 * The same policy and dates as the btrfs → btrfs case in retention.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBtrfs, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { day, digests, lines, sorted, takeSnapshots } from '../fixtures/retention.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const MiB = 1024 * 1024;
const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true });

describe('--keep on btrfs → SSH', { skip }, () => {
  // Every third day from Monday 2024-01-01 to Tuesday 2024-02-27.
  const dates = Array.from({ length: 20 }, (_, i) => day(3 * i));
  let sshd: Sshd;
  let a: BtrfsFs;
  let b: BtrfsFs;
  let src: string;
  let dst: string;
  const cli = (args: string[]) =>
    runCli(['--remote-command', sshd.remoteCommand, ...args], 'buttersink', {
      env: { HOME: sshd.home, SSH_AUTH_SOCK: '' },
    });

  before(async () => {
    sshd = await startSshd();
    a = await createBtrfs({ size: 256 * MiB });
    b = await createBtrfs({ size: 256 * MiB });
    const vol = await subvolume(join(a.mnt, 'vol'));
    src = join(a.mnt, 'snaps');
    dst = join(b.mnt, 'backup');
    await mkdir(src);
    await mkdir(dst);
    await takeSnapshots(vol, src, dates);
  });
  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await sshd?.stop();
  });

  it('-n says what the remote would delete and changes nothing; the real run deletes exactly that', async () => {
    const remote = `ssh://${sshd.alias}${dst}/`;
    const keep = ['--keep', 'latest=3,weekly=4,monthly=2'];
    const before = await digests(src, await sorted(src));
    const plain = await cli(['-q', `${src}/`, remote]);
    assert.equal(plain.exitCode, 0, plain.stderr);
    assert.equal((await sorted(dst)).length, 20);

    const dry = await cli(['-n', '-q', ...keep, `${src}/`, remote]);
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.equal((await sorted(dst)).length, 20, 'a dry run changes nothing');
    const wouldDelete = lines(dry.stdout, 'would delete ').map((l) => l.slice(13));
    assert.equal(wouldDelete.length, 13, dry.stdout);

    const run = await cli(['-q', ...keep, `${src}/`, remote]);
    assert.equal(run.exitCode, 0, run.stderr);
    // latest 3: Feb 21, 24, 27; weeks from Feb 5: Feb 6, 12, 21, 27; months: Jan 1, Feb 3.
    const kept = ['01-01', '02-03', '02-06', '02-12', '02-21', '02-24', '02-27'].map(
      (d) => `home-2024-${d}`,
    );
    assert.deepEqual(await sorted(dst), kept);
    const deleted = lines(run.stdout, 'deleted ').map((l) => l.slice(8));
    assert.deepEqual(deleted.sort(), wouldDelete.sort(), '-n said exactly what the run did');
    assert.deepEqual(await digests(src, await sorted(src)), before, 'source untouched');
    for (const k of kept) {
      assert.equal(await treeDigest(join(dst, k)), before.get(k), `${k} is intact`);
    }
  });
});
