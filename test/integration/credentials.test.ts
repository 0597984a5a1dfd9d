/**
 * Credentials never reach the user's screen or the debug log: CLI runs against
 * moto_server (through a counting proxy that shows the sentinel key id really
 * signed the requests) with unique sentinel AWS credentials in the
 * environment, `--logfile` set and progress on, succeeding and failing; the
 * sentinels must appear in none of stdout, stderr and the log file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/s3/s3-client.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { MOTO_ENV, startCountingProxy, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { CountingProxy, Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, moto: true });

// Unique per run, so a hit cannot be a coincidence; moto accepts any pair.
const KEY_ID = `AKIASENTINEL${randomBytes(4).toString('hex').toUpperCase()}`;
const SECRET = `sentinel-secret-${randomBytes(12).toString('hex')}`;
const SESSION = `sentinel-session-${randomBytes(12).toString('hex')}`;
const SENTINELS = [KEY_ID, SECRET, SESSION];

describe('credentials stay out of output and logs', { skip }, () => {
  let moto: Moto;
  let proxy: CountingProxy;
  let client: S3Client;
  let restoreEnv: () => void;
  let fs: BtrfsFs;
  let snaps: string;
  const env = {
    ...MOTO_ENV,
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET,
    AWS_SESSION_TOKEN: SESSION,
  };

  before(async () => {
    restoreEnv = useMotoEnv();
    moto = await startMoto();
    proxy = await startCountingProxy(moto.endpoint);
    client = createS3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: 'bkt-creds' }));
    fs = await createBtrfs();
    const live = await subvolume(join(fs.mnt, 'live'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(snaps);
    await makeTree(live, 0);
    await snapshot(live, join(snaps, 's0'));
  });
  after(async () => {
    client?.destroy();
    await proxy?.close();
    await moto?.stop();
    await fs?.cleanup();
    restoreEnv?.();
  });

  it('upload, listing, restore and a failing run print and log no credential', async () => {
    const log = join(fs.mnt, 'run.log');
    const restore = join(fs.mnt, 'restore');
    await mkdir(restore);
    const s3 = ['--endpoint-url', proxy.endpoint, '-l', log];
    const runs = [
      { args: [...s3, `${snaps}/`, 's3://bkt-creds/b/'], ok: true },
      { args: [...s3, 's3://bkt-creds/b/'], ok: true },
      { args: [...s3, 's3://bkt-creds/b/', `${restore}/`], ok: true },
      // An error path: the SDK's error carries request details.
      { args: [...s3, 's3://no-such-bucket-creds/x/'], ok: false },
    ];
    const outputs: string[] = [];
    for (const r of runs) {
      const res = await runCli(r.args, 'buttersink', { env });
      assert.equal(res.exitCode === 0, r.ok, `${r.args.join(' ')}: ${res.stderr}`);
      outputs.push(`$ ${r.args.join(' ')}\n${res.stdout}\n${res.stderr}`);
    }
    const logText = await readFile(log, 'utf8');
    assert.ok(logText.split('\n').length > 20, 'the log file holds the debug lines');

    // The sentinels were the credentials in use: they signed the requests.
    const signed = proxy.requests.filter((q) => q.authorization?.includes(`Credential=${KEY_ID}/`));
    assert.ok(signed.length > 0, 'requests were signed with the sentinel key id');

    for (const s of SENTINELS) {
      for (const [where, text] of [
        ['stdout/stderr', outputs.join('\n')],
        ['log file', logText],
      ] as const) {
        assert.ok(!text.includes(s), `${where} contains the credential ${s}`);
      }
    }
  });
});
