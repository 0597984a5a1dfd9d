/**
 * ssh → S3 and S3 → ssh by the same composition as every other pair of
 * stores: a remote btrfs host (sshd on 127.0.0.1) archived to a bucket
 * (moto_server on 127.0.0.1) and restored from it onto another filesystem of
 * the remote host.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import type { Store } from '../../src/stores/store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { S3Location, SshLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true, moto: true });

describe('ssh ↔ S3', { skip }, () => {
  let sshd: Sshd;
  let moto: Moto;
  let client: S3Client;
  let restoreEnv: () => void;
  let remote: BtrfsFs;
  /** A second filesystem of the remote host: the server refuses a UUID its filesystem already has. */
  let restoreFs: BtrfsFs;
  const stores: Store[] = [];
  const ssh = (dir: string, mode: 'r' | 'a' | 'w'): SshStore => {
    const s = new SshStore(parseLocation(`ssh://${sshd.alias}${dir}/`) as SshLocation, {
      home: sshd.home,
      agent: false,
      remoteCommand: sshd.remoteCommand,
      mode,
    });
    stores.push(s);
    return s;
  };
  const s3 = (): S3Store => {
    const s = new S3Store(parseLocation('s3://bkt-ssh/host/') as S3Location, {
      endpoint: moto.endpoint,
      partSize: 5 << 20,
      jobs: 2,
    });
    stores.push(s);
    return s;
  };

  before(async () => {
    restoreEnv = useMotoEnv();
    [sshd, moto, remote, restoreFs] = await Promise.all([
      startSshd(),
      startMoto(),
      createBtrfs({ size: 768 << 20 }),
      createBtrfs({ size: 512 << 20 }),
    ]);
    client = createS3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: 'bkt-ssh' }));
    const vol = await subvolume(join(remote.mnt, 'vol'));
    await mkdir(join(remote.mnt, 'snaps'));
    await mkdir(join(restoreFs.mnt, 'restored'));
    for (let step = 0; step < 3; step++) {
      await makeTree(vol, step, { bigMiB: 8 });
      await snapshot(vol, join(remote.mnt, 'snaps', `s${step}`));
    }
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    client?.destroy();
    await sshd?.stop();
    await moto?.stop();
    restoreEnv?.();
    await remote?.cleanup();
    await restoreFs?.cleanup();
  });

  it('archives a remote host to S3 and restores it onto the remote host, UUIDs and content kept', async () => {
    const up = await sync(ssh(join(remote.mnt, 'snaps'), 'r'), s3());
    assert.equal(up.transferred.length, 3);
    const down = await sync(s3(), ssh(join(restoreFs.mnt, 'restored'), 'a'));
    assert.equal(down.transferred.length, 3);
    for (let i = 0; i < 3; i++) {
      const orig = join(remote.mnt, 'snaps', `s${i}`);
      const copy = join(restoreFs.mnt, 'restored', `s${i}`);
      const shown = await subvolumeShow(copy);
      assert.equal(shown.receivedUuid, (await subvolumeShow(orig)).uuid);
      assert.equal(shown.readOnly, true);
      assert.equal(await treeDigest(copy), await treeDigest(orig));
    }
    assert.equal(
      (await sync(s3(), ssh(join(restoreFs.mnt, 'restored'), 'a'))).transferred.length,
      0,
    );
  });
});
