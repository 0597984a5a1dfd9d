/**
 * What users see (issue 13), S3: a prefix holding nothing says so and names
 * the prefixes that exist, a prefix matches whole path segments only, missing
 * credentials get the AWS CLI's fix, a restore says "received". Through the
 * CLI, against moto_server and real loop-mounted btrfs.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { deleteSubvolume } from '../../src/btrfs/subvolume.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { MOTO_ENV, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, moto: true });

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const U3 = '33333333-3333-4333-8333-333333333333';

/** Asserts `stderr` is exactly one line, without a stack trace. */
function oneLine(stderr: string): void {
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

describe('CLI messages: S3', { skip }, () => {
  let moto: Moto;
  let client: S3Client;
  let restoreEnv: () => void;
  let fs: BtrfsFs;
  let snaps: string;
  const s3 = (args: string[]) =>
    runCli(['--endpoint-url', moto.endpoint, ...args], 'buttersink', { env: { ...MOTO_ENV } });

  before(async () => {
    restoreEnv = useMotoEnv();
    moto = await startMoto();
    client = createS3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: 'bkt' }));
    // Stored diffs as the layout names them; listing never reads their bytes.
    for (const key of [`b2/s1/${U1}_None`, `backups2/s1/${U2}_None`, `trash/x/s1/${U3}_None`]) {
      await client.send(new PutObjectCommand({ Bucket: 'bkt', Key: key, Body: 'x' }));
    }
    await client.send(new CreateBucketCommand({ Bucket: 'segments' }));
    for (const key of [`backups/s1/${U1}_None`, `backups2/s1/${U2}_None`]) {
      await client.send(new PutObjectCommand({ Bucket: 'segments', Key: key, Body: 'x' }));
    }
    fs = await createBtrfs({ size: 512 << 20 });
    const live = await subvolume(join(fs.mnt, 'live'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(snaps);
    for (let step = 0; step < 2; step++) {
      await makeTree(live, step, { bigMiB: 1 });
      await snapshot(live, join(snaps, `s${step + 1}`));
    }
  });
  after(async () => {
    await fs?.cleanup();
    await moto?.stop();
    restoreEnv?.();
  });

  it('listing an empty prefix warns, naming the prefixes in the bucket', async () => {
    const r = await s3(['s3://bkt/backups/']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(
      r.stderr,
      'buttersink: warning: s3://bkt/backups/: no diffs here; prefixes in this bucket: b2/, backups2/',
    );
    assert.match(r.stdout, /^TOTAL: 0 diff\(s\)/m);
  });

  it('an empty prefix as a sync source is an error naming the prefixes (exit 2)', async () => {
    const dst = join(fs.mnt, 'from-empty');
    await mkdir(dst);
    const r = await s3(['s3://bkt/backups/', `${dst}/`]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.equal(
      r.stderr,
      'buttersink: s3://bkt/backups/: no diffs here; prefixes in this bucket: b2/, backups2/',
    );
    assert.deepEqual(await readdir(dst), []);
  });

  it('a location without trailing slash lists whole path segments only (not backups2/)', async () => {
    const r = await s3(['s3://segments/backups']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${U1}  backups/s1  full  1 B$`, 'm'));
    assert.doesNotMatch(r.stdout, /backups2/);
    assert.match(r.stdout, /^TOTAL: 1 diff\(s\), 1 B$/m);
  });

  it('a location without trailing slash naming nothing says so', async () => {
    const r = await s3(['s3://segments/backup']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(
      r.stderr,
      'buttersink: warning: s3://segments/backup: nothing at this path (no snapshot backup, nor any below it)',
    );
    assert.match(r.stdout, /^TOTAL: 0 diff\(s\), 0 B$/m);
  });

  it('no credentials at all: one line naming where to put them (exit 1)', async () => {
    const home = await mkdtemp(join(tmpdir(), 'buttersink-nocreds-'));
    const r = await runCli(['--endpoint-url', moto.endpoint, 's3://bkt/b2/'], 'buttersink', {
      env: {
        HOME: home,
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_SESSION_TOKEN: '',
        AWS_PROFILE: '',
        AWS_REGION: 'us-east-1',
        AWS_CONFIG_FILE: join(home, 'none'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
        AWS_WEB_IDENTITY_TOKEN_FILE: '',
      },
    });
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: listing s3:\/\/bkt\/b2\/: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE \(--profile\), or write ~\/\.aws\/credentials \(aws configure\)$/,
    );
    oneLine(r.stderr);
  });

  it('a restore from S3 says "received" and ends with the summary line', async () => {
    const up = await s3(['-q', `${snaps}/`, 's3://bkt/real/']);
    assert.equal(up.exitCode, 0, up.stderr);
    assert.match(up.stdout, /^sent s1 \(full\): /m);
    const dst = join(fs.mnt, 'restored');
    await mkdir(dst);
    const r = await s3(['-q', 's3://bkt/real/', `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^received s1 \(full\): /m);
    assert.match(r.stdout, /^received s2 from s1: /m);
    assert.doesNotMatch(r.stdout, /^sent /m);
    assert.match(
      r.stdout.trim().split('\n').at(-1) ?? '',
      /^2 snapshot\(s\), \d+\.\d (KiB|MiB) transferred in \d+\.\d s$/,
    );
    assert.deepEqual((await readdir(dst)).sort(), ['s1', 's2']);
  });

  // Last: it deletes a source snapshot.
  it('-d says which diff it moved to trash/ (key and size) and removes the stale .bs', async () => {
    const up = await s3(['-q', `${snaps}/`, 's3://bkt/del/']);
    assert.equal(up.exitCode, 0, up.stderr);
    await deleteSubvolume(join(snaps, 's2'));
    const r = await s3(['-q', '-d', `${snaps}/`, 's3://bkt/del/']);
    assert.equal(r.exitCode, 0, r.stderr);
    const keys = async (prefix: string) =>
      (
        (await client.send(new ListObjectsV2Command({ Bucket: 'bkt', Prefix: prefix }))).Contents ??
        []
      )
        .map((o) => `${o.Key} ${o.Size}`)
        .sort();
    const trashed = await keys('trash/del/');
    assert.equal(trashed.length, 1, trashed.join());
    const [key, size] = trashed[0]!.slice('trash/'.length).split(' ');
    assert.match(
      r.stdout,
      new RegExp(
        `^moved s3://bkt/${key} \\((${size} B|[\\d.]+ KiB)\\) to s3://bkt/trash/${key}; removed s3://bkt/del/s2\\.bs \\(no diff of it left\\)$`,
        'm',
      ),
    );
    assert.match(r.stdout.trim().split('\n').at(-1) ?? '', /, 1 diff\(s\) moved to trash\/$/);
    assert.doesNotMatch(r.stdout, /nothing to do/);
    const left = await keys('del/');
    assert.ok(!left.some((k) => k.startsWith('del/s2')), left.join());
    assert.ok(
      left.some((k) => k.startsWith('del/s1.bs')),
      'the .bs of a snapshot still stored stays',
    );
  });
});
