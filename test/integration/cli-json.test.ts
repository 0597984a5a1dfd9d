/**
 * `--json` through the CLI on real stores (loop-mounted btrfs, moto_server):
 * every line of stdout is one JSON object valid against
 * schema/buttersink-json.schema.json (ajv), nothing else is on stdout, and the
 * events say what happened: listings, plan, transfers, deletes, summary,
 * verify, errors, and btrfslist.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { deleteSubvolume } from '../../src/btrfs/subvolume.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { assertJsonLines, eventsOf } from '../fixtures/json-schema.js';
import { MOTO_ENV, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, moto: true });

describe('--json output against the schema', { skip }, () => {
  let A: BtrfsFs;
  let B: BtrfsFs;
  let moto: Moto;
  let restoreEnv: () => void;
  let snaps: string;
  let dst: string;
  const cli = (args: string[], bin: 'buttersink' | 'btrfslist' = 'buttersink') =>
    runCli(bin === 'buttersink' ? ['--endpoint-url', moto.endpoint, ...args] : args, bin, {
      env: { ...MOTO_ENV },
    });

  before(async () => {
    restoreEnv = useMotoEnv();
    [A, B, moto] = await Promise.all([createBtrfs(), createBtrfs(), startMoto()]);
    await createS3Client({ endpoint: moto.endpoint }).send(
      new CreateBucketCommand({ Bucket: 'bkt' }),
    );
    const live = await subvolume(join(A.mnt, 'live'));
    snaps = join(A.mnt, 'snaps');
    await mkdir(snaps);
    for (let step = 0; step < 3; step++) {
      await makeTree(live, step, { bigMiB: 1 });
      await snapshot(live, join(snaps, `s${step + 1}`));
    }
    dst = join(B.mnt, 'backup');
    await mkdir(dst);
  });
  after(async () => {
    await Promise.all([A?.cleanup(), B?.cleanup(), moto?.stop()]);
    restoreEnv?.();
  });

  it('-n: a plan and a dry-run summary, nothing else on stdout', async () => {
    const r = await cli(['--json', '-n', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const events = assertJsonLines(r.stdout);
    assert.deepEqual(
      events.map((e) => e.event),
      ['plan', 'summary'],
    );
    const [plan] = eventsOf(events, 'plan');
    assert.equal(plan!.dryRun, true);
    assert.deepEqual(
      plan!.plan.transfers.map((t) => [t.to.path, t.from?.path ?? null]),
      [
        ['s1', null],
        ['s2', 's1'],
        ['s3', 's2'],
      ],
    );
    assert.equal(eventsOf(events, 'summary')[0]!.result, 'dry-run');
  });

  it('a sync: the plan, one transfer event each (full, then incremental), the summary', async () => {
    const r = await cli(['--json', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const events = assertJsonLines(r.stdout);
    const transfers = eventsOf(events, 'transfer');
    assert.deepEqual(
      transfers.map((t) => [t.index, t.count, t.path, t.kind, t.verb]),
      [
        [1, 3, 's1', 'full', 'sent'],
        [2, 3, 's2', 'incremental', 'sent'],
        [3, 3, 's3', 'incremental', 'sent'],
      ],
    );
    assert.ok(transfers.every((t) => t.bytes > 0));
    const summary = eventsOf(events, 'summary')[0]!;
    assert.equal(events.at(-1), summary);
    assert.deepEqual([summary.result, summary.snapshots], ['done', 3]);
    assert.equal(
      summary.bytes,
      transfers.reduce((n, t) => n + t.bytes, 0),
    );
  });

  it('a listing is one listing event with the snapshots', async () => {
    const r = await cli(['--json', `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const [listing, ...rest] = eventsOf(assertJsonLines(r.stdout), 'listing');
    assert.deepEqual(rest, []);
    assert.equal(listing!.kind, 'btrfs');
    assert.deepEqual(
      listing!.snapshots.map((s) => s.path),
      ['s1', 's2', 's3'],
    );
  });

  it('to S3 and back: transfers, the S3 listing with diffs, --verify, -d moving diffs to trash/', async () => {
    const up = await cli(['--json', `${snaps}/`, 's3://bkt/j/']);
    assert.equal(up.exitCode, 0, up.stderr);
    assert.equal(eventsOf(assertJsonLines(up.stdout), 'transfer').length, 3);
    const list = await cli(['--json', 's3://bkt/j/']);
    assert.equal(list.exitCode, 0, list.stderr);
    const [listing] = eventsOf(assertJsonLines(list.stdout), 'listing');
    assert.equal(listing!.kind, 's3');
    assert.deepEqual(
      listing!.diffs.map((d) => [d.path, d.fromPath]),
      [
        ['s1', null],
        ['s2', 's1'],
        ['s3', 's2'],
      ],
    );
    const verify = await cli(['--json', '--verify', 's3://bkt/j/']);
    assert.equal(verify.exitCode, 0, verify.stderr);
    const [v] = eventsOf(assertJsonLines(verify.stdout), 'verify');
    assert.deepEqual([v!.checked, v!.bad], [3, 0]);
    const restore = join(B.mnt, 'restore');
    await mkdir(restore);
    const down = await cli(['--json', 's3://bkt/j/', `${restore}/`]);
    assert.equal(down.exitCode, 0, down.stderr);
    assert.ok(
      eventsOf(assertJsonLines(down.stdout), 'transfer').every((t) => t.verb === 'received'),
    );
  });

  it('-d after a source snapshot is gone: delete and delete-diff events, counted in the summary', async () => {
    await deleteSubvolume(join(snaps, 's3'));
    const r = await cli(['--json', '-d', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const events = assertJsonLines(r.stdout);
    assert.deepEqual(
      eventsOf(events, 'delete').map((d) => d.path),
      ['s3'],
    );
    assert.equal(eventsOf(events, 'summary')[0]!.deleted, 1);
    const s3 = await cli(['--json', '-d', `${snaps}/`, 's3://bkt/j/']);
    assert.equal(s3.exitCode, 0, s3.stderr);
    const s3Events = assertJsonLines(s3.stdout);
    const [moved, ...more] = eventsOf(s3Events, 'delete-diff');
    assert.deepEqual(more, []);
    assert.match(moved!.key ?? '', /^s3:\/\/bkt\/j\/s3\/[-0-9a-f]+_[-0-9a-f]+$/);
    assert.match(moved!.trash ?? '', /^s3:\/\/bkt\/trash\/j\/s3\//);
    assert.equal(moved!.removedSizeInfo, 's3://bkt/j/s3.bs');
    assert.equal(eventsOf(s3Events, 'summary')[0]!.deletedDiffs, 1);
  });

  it('a failure: one error event on stdout (exit 2 for a missing directory), one line on stderr', async () => {
    const r = await cli(['--json', join(A.mnt, 'nope') + '/', `${dst}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    const [error, ...rest] = assertJsonLines(r.stdout);
    assert.deepEqual(rest, []);
    assert.equal(error!.event, 'error');
    assert.equal(error!.event === 'error' && error!.exitCode, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  it('btrfslist --json: one btrfslist event', async () => {
    const r = await cli(['--json', A.mnt], 'btrfslist');
    assert.equal(r.exitCode, 0, r.stderr);
    const [listing] = eventsOf(assertJsonLines(r.stdout), 'btrfslist');
    assert.ok(listing!.subvolumes.some((s) => s.path === 'snaps/s1' && s.readOnly));
    assert.notEqual(listing!.filesystem, null);
  });
});
