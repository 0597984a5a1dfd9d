/**
 * Encrypted and compressed archives in S3 (moto_server + loop btrfs): upload with
 * --compress zstd and --encrypt-to, restore with --age-identity (same content, same
 * received UUIDs), a wrong identity, a flipped byte, resume after kill -9, the restore
 * by hand with aws + age + zstd + btrfs receive, scrub, a bucket mixing plain and
 * encrypted diffs, S3 → S3 copies and trash.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import type { ArchiveOptions } from '../../src/stores/s3/archive-codec.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { scrubStore } from '../../src/stores/s3/scrub.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli, startCli } from '../fixtures/cli.js';
import { MOTO_ENV, startCountingProxy, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true, moto: true });
const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('encrypted and compressed archives in S3', { skip: prereqs.skip }, () => {
  let moto: Moto;
  let client: S3Client;
  let restoreEnv: () => void;
  let src: BtrfsFs;
  let snaps: string;
  let keyFile: string;
  let otherKeyFile: string;
  let recipient: string;
  const uuids = new Map<string, string>();
  const cleanups: (() => Promise<void>)[] = [];

  const btrfsStore = (dir: string) => new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
  const s3Store = (uri: string, archive: ArchiveOptions = {}, endpoint = moto.endpoint) =>
    new S3Store(parseLocation(uri) as S3Location, {
      endpoint,
      partSize: 5 * MiB,
      jobs: 2,
      archive,
    });
  const object = async (bucket: string, key: string) => {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { bytes: Buffer.from(await res.Body!.transformToByteArray()), meta: res.Metadata };
  };
  const keys = async (bucket: string, prefix = '') =>
    (
      (await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ??
      []
    )
      .map((o) => o.Key!)
      .sort();
  const freshDir = async (name: string) => {
    const fs = await createBtrfs({ size: 384 * MiB });
    cleanups.push(() => fs.cleanup());
    const dir = join(fs.mnt, name);
    await mkdir(dir);
    return dir;
  };
  const cli = (args: string[]) =>
    runCli(['--endpoint-url', moto.endpoint, '--part-size', '5', ...args], 'buttersink', {
      env: { ...MOTO_ENV },
    });

  before(async () => {
    restoreEnv = useMotoEnv();
    moto = await startMoto();
    client = createS3Client({ endpoint: moto.endpoint });
    for (const b of ['enc', 'kill', 'flip', 'mix']) {
      await client.send(new CreateBucketCommand({ Bucket: b }));
    }
    src = await createBtrfs({ size: 512 * MiB });
    const vol = await subvolume(join(src.mnt, 'vol'));
    snaps = join(src.mnt, 'snaps');
    await mkdir(snaps);
    await makeTree(vol, 0, { bigMiB: 6 });
    for (let i = 0; i < 2; i++) {
      if (i > 0) await makeTree(vol, i);
      const p = await snapshot(vol, join(snaps, `s${i}`));
      uuids.set(`s${i}`, (await subvolumeShow(p)).uuid!);
    }
    keyFile = join(src.mnt, 'key.txt');
    otherKeyFile = join(src.mnt, 'other.txt');
    const gen = await execa('age-keygen', ['-o', keyFile]);
    recipient = /age1[0-9a-z]+/.exec(gen.stderr)![0];
    await execa('age-keygen', ['-o', otherKeyFile]);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await src?.cleanup();
    client?.destroy();
    await moto?.stop();
    restoreEnv?.();
  });

  it('--compress zstd --encrypt-to: .zst.age keys, age bytes, digest of the stored bytes; restore with --age-identity: same trees, same UUIDs', async () => {
    const up = await cli([
      '-q',
      '--compress',
      'zstd:3',
      '--encrypt-to',
      recipient,
      `${snaps}/`,
      's3://enc/a/',
    ]);
    assert.equal(up.exitCode, 0, up.stderr);
    const u0 = uuids.get('s0')!;
    const u1 = uuids.get('s1')!;
    assert.deepEqual(await keys('enc'), [
      'a/s0.bs',
      `a/s0/${u0}_None.zst.age`,
      'a/s1.bs',
      `a/s1/${u1}_${u0}.zst.age`,
    ]);
    const { bytes, meta } = await object('enc', `a/s0/${u0}_None.zst.age`);
    assert.equal(bytes.subarray(0, 21).toString(), 'age-encryption.org/v1');
    assert.equal(meta?.['buttersink-sha256'], sha(bytes), 'the digest is of the stored bytes');
    const bs = (await object('enc', 'a/s0.bs')).bytes.toString();
    assert.equal(bs, `${u0}\tNone\t${bytes.length}\n`, 'the .bs records the stored size');

    const restore = await freshDir('r');
    const down = await cli(['-q', '--age-identity', keyFile, 's3://enc/a/', `${restore}/`]);
    assert.equal(down.exitCode, 0, down.stderr);
    for (const name of ['s0', 's1']) {
      const show = await subvolumeShow(join(restore, name));
      assert.equal(show.receivedUuid, uuids.get(name), `${name}: received UUID`);
      assert.equal(await treeDigest(join(restore, name)), await treeDigest(join(snaps, name)));
    }
  });

  it('a wrong identity: one-line error naming the key, nothing left on the destination', async () => {
    const restore = await freshDir('wrong');
    const r = await cli(['-q', '--age-identity', otherKeyFile, 's3://enc/a/', `${restore}/`]);
    assert.notEqual(r.exitCode, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /s3:\/\/enc\/a\/s0\/[0-9a-f-]+_None\.zst\.age/);
    assert.match(lines[0]!, /cannot decrypt.*--age-identity/);
    assert.deepEqual(await readdir(restore), [], 'nothing partial visible');
    const none = await cli(['-q', 's3://enc/a/', `${restore}/`]);
    assert.notEqual(none.exitCode, 0);
    assert.match(none.stderr, /is encrypted: give its age identity \(--age-identity FILE\)/);
    assert.deepEqual(await readdir(restore), []);
  });

  it('the restore by hand: aws s3 cp | age -d -i key.txt | zstd -d | btrfs receive', async () => {
    const restore = await freshDir('byhand');
    const u0 = uuids.get('s0')!;
    const line = `aws --endpoint-url ${moto.endpoint} s3 cp s3://enc/a/s0/${u0}_None.zst.age - | age -d -i ${keyFile} | zstd -d | btrfs receive ${restore}`;
    await execa('bash', ['-o', 'pipefail', '-c', line], { env: { ...MOTO_ENV } });
    assert.equal((await subvolumeShow(join(restore, 's0'))).receivedUuid, u0);
    assert.equal(await treeDigest(join(restore, 's0')), await treeDigest(join(snaps, 's0')));
  });

  it('--verify decrypts and checks every command with --age-identity; without it, the stored digest only', async () => {
    const withKey = await cli(['--verify', '--age-identity', keyFile, 's3://enc/a/']);
    assert.equal(withKey.exitCode, 0, withKey.stderr);
    assert.match(withKey.stdout, /verified 2 diff\(s\)/);
    assert.doesNotMatch(withKey.stdout, /only its stored digest/);
    const without = await cli(['--verify', 's3://enc/a/']);
    assert.equal(without.exitCode, 0, without.stderr);
    assert.match(without.stdout, /encrypted: only its stored digest was checked/);
  });

  it('a flipped byte in an encrypted object: authentication failure naming the key; scrub reports it', async (t) => {
    const enc = s3Store('s3://flip/x/', { recipients: [recipient] });
    await sync(btrfsStore(snaps), enc);
    const key = `x/s0/${uuids.get('s0')}_None.age`;
    const { bytes, meta } = await object('flip', key);
    bytes[Math.floor(bytes.length / 3)]! ^= 0x10;
    await client.send(
      new PutObjectCommand({ Bucket: 'flip', Key: key, Body: bytes, Metadata: meta }),
    );
    const restore = await freshDir('flip');
    const reader = s3Store('s3://flip/x/', { identityFiles: [keyFile] });
    await assert.rejects(sync(reader, btrfsStore(restore)), (err: Error) => {
      t.diagnostic(err.message);
      assert.match(err.message, new RegExp(`s3://flip/${key}: age authentication failed`));
      return true;
    });
    // As for any failed receive: at most an incomplete `*.part`, never a complete-looking s0.
    const left = await readdir(restore);
    assert.ok(!left.includes('s0') && !left.includes('s1'), left.join(', '));
    assert.deepEqual((await btrfsStore(restore).view('dest')).volumes, []);
    const report = await scrubStore(reader);
    assert.deepEqual(
      report.bad.map((b) => b.diff.key),
      [key],
    );
    assert.match(report.bad[0]!.error, /authentication failed/);
  });

  it('kill -9 mid-upload of an encrypted diff, rerun: completes into the open upload, decrypts to a fresh btrfs send', async (t) => {
    const big = await subvolume(join(src.mnt, 'bigvol'));
    await execa('dd', ['if=/dev/urandom', `of=${join(big, 'data.bin')}`, 'bs=1M', 'count=32']);
    const bigSnaps = join(src.mnt, 'bigsnaps');
    await mkdir(bigSnaps);
    const snap = await snapshot(big, join(bigSnaps, 'b0'));
    const key = `p/b0/${(await subvolumeShow(snap)).uuid!}_None.zst.age`;
    const proxy = await startCountingProxy(moto.endpoint);
    proxy.partDelayMs = 250;
    const args = ['-q', '--part-size', '5', '--jobs', '2', '--endpoint-url', proxy.endpoint];
    const enc = ['--compress', 'zstd', '--encrypt-to', recipient, `${bigSnaps}/`, 's3://kill/p/'];
    const first = startCli([...args, ...enc], 'buttersink', { env: { ...MOTO_ENV } });
    while (proxy.uploadedParts() < 3 && first.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGKILL');
    await first;
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: 'kill' }));
    assert.deepEqual(
      open.Uploads?.map((u) => u.Key),
      [key],
      'the encrypted upload was left open',
    );
    assert.equal((await keys('kill')).includes(key), false, 'no object yet');
    proxy.partDelayMs = 0;
    const second = await runCli([...args, ...enc], 'buttersink', { env: { ...MOTO_ENV } });
    assert.equal(second.exitCode, 0, second.stderr);
    t.diagnostic(`rerun stderr: ${second.stderr.trim()}`);
    const after = await client.send(new ListMultipartUploadsCommand({ Bucket: 'kill' }));
    assert.equal(after.Uploads?.length ?? 0, 0, 'no open upload left');
    const { bytes } = await object('kill', key);
    const file = join(src.mnt, 'b0.zst.age');
    await writeFile(file, bytes);
    const plain = await execa(
      'bash',
      ['-o', 'pipefail', '-c', `age -d -i ${keyFile} ${file} | zstd -d`],
      {
        encoding: 'buffer',
      },
    );
    // buttersink sends compressed data (protocol 2) by default where both sides can.
    const fresh = await execa('btrfs', ['send', '-q', '--proto', '2', '--compressed-data', snap], {
      encoding: 'buffer',
    });
    assert.equal(sha(plain.stdout as Uint8Array), sha(fresh.stdout as Uint8Array));
    await proxy.close();
  });

  it('a bucket mixing plain and encrypted diffs restores; S3 → S3 copies like encodings server-side and decodes others; trash keeps the suffix', async () => {
    const u0 = uuids.get('s0')!;
    const u1 = uuids.get('s1')!;
    await sync(btrfsStore(snaps), s3Store('s3://mix/m/'), { exclude: [/^s1$/] });
    const archive = { recipients: [recipient], compressLevel: 1, identityFiles: [keyFile] };
    await sync(btrfsStore(snaps), s3Store('s3://mix/m/', archive));
    assert.deepEqual(
      (await keys('mix', 'm/')).filter((k) => !k.endsWith('.bs')),
      [`m/s0/${u0}_None`, `m/s1/${u1}_${u0}.zst.age`],
    );
    const restore = await freshDir('mix');
    await sync(s3Store('s3://mix/m/', { identityFiles: [keyFile] }), btrfsStore(restore));
    assert.equal(await treeDigest(join(restore, 's1')), await treeDigest(join(snaps, 's1')));

    // Same options on both sides: server-side copies, keys and bytes kept.
    await sync(s3Store('s3://mix/m/', archive), s3Store('s3://mix/same/', archive));
    const copied = `same/s1/${u1}_${u0}.zst.age`;
    assert.equal(
      sha((await object('mix', copied)).bytes),
      sha((await object('mix', `m/s1/${u1}_${u0}.zst.age`)).bytes),
    );
    // Plain destination: the encrypted diff is decrypted on the way.
    await sync(s3Store('s3://mix/m/', { identityFiles: [keyFile] }), s3Store('s3://mix/plain/'));
    const plainKeys = (await keys('mix', 'plain/')).filter((k) => !k.endsWith('.bs'));
    assert.deepEqual(plainKeys, [`plain/s0/${u0}_None`, `plain/s1/${u1}_${u0}`]);
    const head = await client.send(new HeadObjectCommand({ Bucket: 'mix', Key: plainKeys[1]! }));
    assert.ok(head.ContentLength! > 0);

    const same = s3Store('s3://mix/same/', archive);
    const view = await same.view('dest');
    await same.deleteDiff(view.diffs!.find((d) => d.to === u1)!);
    assert.ok((await keys('mix', 'trash/')).includes(`trash/${copied}`));
  });
});
