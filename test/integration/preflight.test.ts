/**
 * Check before sending (issue 10 item 5): a run into a local btrfs directory
 * refuses to start, before the first byte is sent, when a planned snapshot's
 * path is taken or the plan does not fit in the free space; `-n` warns instead.
 * Real loop-mounted filesystems, through the CLI.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import {
  createBtrfs,
  deterministicBytes,
  makeTree,
  snapshot,
  subvolume,
} from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

describe('check before sending', { skip }, () => {
  let A: BtrfsFs;
  let B: BtrfsFs;
  let small: BtrfsFs;
  let bigSnaps: string;
  let snaps: string;

  before(async () => {
    [A, B, small] = await Promise.all([
      createBtrfs({ size: 1 << 30 }),
      createBtrfs({ size: 1 << 30 }),
      createBtrfs({ size: 128 << 20 }),
    ]);
    const bigLive = await subvolume(join(A.mnt, 'big-live'));
    await writeFile(join(bigLive, 'big'), deterministicBytes(200 << 20, 'preflight'));
    bigSnaps = join(A.mnt, 'big-snaps');
    await mkdir(bigSnaps);
    await snapshot(bigLive, join(bigSnaps, 'big'));
    const live = await subvolume(join(A.mnt, 'live'));
    snaps = join(A.mnt, 'snaps');
    await mkdir(snaps);
    for (let step = 0; step < 2; step++) {
      await makeTree(live, step, { bigMiB: 1 });
      await snapshot(live, join(snaps, `s${step + 1}`));
    }
  });
  after(async () => {
    await Promise.all([A?.cleanup(), B?.cleanup(), small?.cleanup()]);
  });

  it('a plan bigger than the free space is refused before anything is sent', async () => {
    const r = await runCli(['-q', `${bigSnaps}/`, `${small.mnt}/`]);
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: refusing to start: the plan needs about \d+\.\d MiB at .*\/ \(200\.\d MiB \+ margin\), \d+\.\d MiB free \(btrfs estimate\)/m,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.deepEqual(await readdir(small.mnt), [], 'no .part, nothing received');
    assert.deepEqual(await listSubvolumes(small.mnt), []);
  });

  it('-n shows the space problem as a warning and exits 0', async () => {
    const r = await runCli(['-n', `${bigSnaps}/`, `${small.mnt}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: a real run would refuse to start: the plan needs about .* MiB free \(btrfs estimate\)/,
    );
    assert.match(r.stdout, /dry run: nothing changed/);
    assert.deepEqual(await readdir(small.mnt), []);
  });

  it('a plan that does not fit only by estimated sizes (-e) is a warning, not a refusal', async () => {
    // A snapshot never measured (no `.bs` sizes): with -e its size is a guess.
    const unmeasured = join(A.mnt, 'unmeasured');
    await mkdir(unmeasured);
    await snapshot(join(A.mnt, 'big-live'), join(unmeasured, 'big'));
    const r = await runCli(['-n', '-e', `${unmeasured}/`, `${small.mnt}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: the plan may need about .* estimated, \+ margin\), .* free \(btrfs estimate\); not refused: the sizes are estimated/,
    );
    assert.doesNotMatch(r.stderr, /refuse to start/);
  });

  it('a name clash with the second planned snapshot refuses before the first is sent', async () => {
    const dst = join(B.mnt, 'backup');
    await mkdir(dst);
    // A different read-only snapshot under the name the second one would take.
    const other = await subvolume(join(B.mnt, 'other'));
    await writeFile(join(other, 'x'), 'not s2');
    await snapshot(other, join(dst, 's2'));
    const s2 = await subvolumeShow(join(snaps, 's2'));

    const dry = await runCli(['-n', `${snaps}/`, `${dst}/`]);
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /s2 from s1/);
    assert.ok(
      dry.stderr.includes(
        `warning: a real run would refuse to start: ${join(dst, 's2')} already exists and is not snapshot ${s2.uuid}; move it away first`,
      ),
      dry.stderr,
    );

    const r = await runCli(['-q', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 1, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `buttersink: refusing to start: ${join(dst, 's2')} already exists and is not snapshot ${s2.uuid}; move it away first`,
    );
    assert.equal(existsSync(join(dst, 's1')), false, 's1 was not received');
    assert.equal(existsSync(join(dst, 's1.part')), false, 's1 was not started');
    assert.deepEqual((await readdir(dst)).sort(), ['s2']);
  });

  it('a plain file or directory in the way is named too, all in one line', async () => {
    const dst = join(B.mnt, 'cluttered');
    await mkdir(dst);
    await writeFile(join(dst, 's1'), 'a file');
    await mkdir(join(dst, 's2'));
    const r = await runCli(['-q', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      /refusing to start: .*\/cluttered\/s1 already exists .*; .*\/s2 already/,
    );
  });
});
