/**
 * Progress honesty for uploads: the bytes an S3 destination reports as stored
 * (`onStored`, what the CLI's progress display shows) grow only by parts S3
 * acknowledged, never run ahead of the bytes sent, and reach the diff's size
 * only once every part is stored. On a real btrfs source and moto_server.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/s3/s3-client.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, moto: true });
const MiB = 1024 * 1024;

describe('upload progress counts bytes stored', { skip }, () => {
  let fs: BtrfsFs;
  let moto: Moto;
  let restoreEnv: () => void;
  let snaps: string;

  before(async () => {
    restoreEnv = useMotoEnv();
    [fs, moto] = await Promise.all([createBtrfs(), startMoto()]);
    await createS3Client({ endpoint: moto.endpoint }).send(
      new CreateBucketCommand({ Bucket: 'bkt' }),
    );
    const live = await subvolume(join(fs.mnt, 'live'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(snaps);
    await makeTree(live, 0, { bigMiB: 12 });
    await snapshot(live, join(snaps, 's1'));
  });
  after(async () => {
    await Promise.all([fs?.cleanup(), moto?.stop()]);
    restoreEnv?.();
  });

  it('stored grows by acknowledged parts, behind the bytes sent, up to the object size', async () => {
    const source = new BtrfsStore(parseLocation(`${snaps}/`) as BtrfsLocation);
    const dest = new S3Store(parseLocation('s3://bkt/p/') as S3Location, {
      endpoint: moto.endpoint,
      partSize: 5 * MiB,
      jobs: 2,
    });
    const stored: { stored: number; sent: number }[] = [];
    let sent = 0;
    try {
      const report = await sync(source, dest, {
        onProgress: (_t, p) => void (sent = p.bytes),
        onStored: (_t, bytes) => void stored.push({ stored: bytes, sent }),
      });
      const [done] = report.transferred;
      assert.ok(done && done.bytes > 10 * MiB, `a diff of several parts: ${done?.bytes}`);
      const values = stored.map((s) => s.stored);
      assert.ok(values.length >= 3, `one report per part: ${values.join()}`);
      // Parts are acknowledged in the order they finish: with 2 jobs the short last part
      // may land before a full one, so every step is one whole part except one short one.
      const steps = values.map((v, i) => v - (values[i - 1] ?? 0));
      const short = steps.filter((step) => step !== 5 * MiB);
      assert.ok(
        short.length <= 1 && short.every((step) => step > 0 && step < 5 * MiB),
        `one step per part: ${steps.join()}`,
      );
      assert.equal(values.at(-1), done.bytes, 'all of it stored at the end');
      assert.ok(
        stored.every((s) => s.stored <= Math.max(s.sent, done.bytes)),
        'never more stored than sent',
      );
      const key = dest.describeDiff(done.transfer.to, null).replace('s3://bkt/', '');
      const head = await dest.client.send(new HeadObjectCommand({ Bucket: 'bkt', Key: key }));
      assert.equal(head.ContentLength, values.at(-1));
    } finally {
      await Promise.all([source.close(), dest.close()]);
    }
  });
});
