/**
 * The S3 store against moto_server on 127.0.0.1 and real loop-mounted btrfs:
 * btrfs → S3 → fresh btrfs round trips, resume after kill -9, damaged diffs,
 * scrub, a bucket laid out by hand in the original's format, --delete.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { buttersinkMain } from '../../src/cli.js';
import { StreamCorruptError, findCause } from '../../src/errors.js';
import { setLogger } from '../../src/log.js';
import type { Warning } from '../../src/log.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { scrubStore } from '../../src/stores/s3/scrub.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import {
  MOTO_ENV,
  isUploadPart,
  startCountingProxy,
  startMoto,
  useMotoEnv,
} from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true, moto: true });
const MiB = 1024 * 1024;
const repo = fileURLToPath(new URL('../..', import.meta.url));

function btrfsStore(dir: string): BtrfsStore {
  return new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
}

function s3Store(uri: string, endpoint: string, extra: object = {}): S3Store {
  return new S3Store(parseLocation(uri) as S3Location, {
    endpoint,
    partSize: 5 * MiB,
    jobs: 3,
    ...extra,
  });
}

async function objectBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function keys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

/** Differences between two trees (content, modes, symlinks, xattrs); '' when identical. */
async function treeDiff(a: string, b: string): Promise<string> {
  const d = await execa('diff', ['-r', '--no-dereference', a, b], { reject: false });
  // No reject: false here: a failing getfattr would make both sides '' and equal.
  const attrs = async (dir: string) =>
    (await execa('getfattr', ['-R', '-h', '-d', '-m', '-', '.'], { cwd: dir })).stdout;
  const modes = async (dir: string) =>
    (await execa('find', ['.', '-printf', '%M %n %s %P\\n'], { cwd: dir })).stdout
      .split('\n')
      .sort()
      .join('\n');
  const out: string[] = [];
  if (d.exitCode !== 0) out.push(d.stdout || d.stderr);
  if ((await attrs(a)) !== (await attrs(b))) out.push('xattrs differ');
  if ((await modes(a)) !== (await modes(b))) out.push('modes/links differ');
  return out.join('\n');
}

function captureWarnings(): { warnings: Warning[]; restore: () => void } {
  const warnings: Warning[] = [];
  const prev = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  return { warnings, restore: () => setLogger(prev) };
}

function runCli(
  args: string[],
  env: Record<string, string>,
): {
  child: ReturnType<typeof spawn>;
  done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin/buttersink.ts', ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{
    code: number | null;
    signal: string | null;
    stdout: string;
    stderr: string;
  }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

describe('S3 store (moto_server + loop btrfs)', { skip: prereqs.skip }, () => {
  let moto: Moto;
  let client: S3Client;
  let restoreEnv: () => void;
  let src: BtrfsFs;
  let vol: string;
  let snaps: string;
  const uuids = new Map<string, string>();

  before(async () => {
    restoreEnv = useMotoEnv();
    moto = await startMoto();
    client = createS3Client({ endpoint: moto.endpoint });
    for (const b of ['chain', 'kill', 'flip', 'legacy', 'trash']) {
      await client.send(new CreateBucketCommand({ Bucket: `bkt-${b}` }));
    }
    src = await createBtrfs({ size: 768 * MiB });
    vol = await subvolume(join(src.mnt, 'vol'));
    snaps = join(src.mnt, 'snaps');
    await mkdir(snaps);
    await makeTree(vol, 0, { bigMiB: 12 });
    for (let i = 0; i < 3; i++) {
      if (i > 0) await makeTree(vol, i);
      const p = await snapshot(vol, join(snaps, `s${i}`));
      uuids.set(`s${i}`, (await subvolumeShow(p)).uuid!);
    }
  });

  after(async () => {
    client?.destroy();
    await moto?.stop();
    restoreEnv?.();
  });

  it('btrfs → S3 of a chain, then S3 → fresh btrfs: same content, same UUIDs, later incremental applies', async () => {
    const s3 = s3Store('s3://bkt-chain/backups/', moto.endpoint);
    const up = await sync(btrfsStore(snaps), s3);
    assert.equal(up.transferred.length, 3);
    for (const d of up.transferred) {
      // One parse rewrites and verifies the upload (issue 12: one pass where Node must look).
      assert.ok(d.streams?.includes('uuid-rewrite+stream-verify'), `${d.streams?.join(' | ')}`);
    }
    const stored = await keys(client, 'bkt-chain');
    for (const name of ['s0', 's1', 's2']) {
      const uuid = uuids.get(name)!;
      assert.ok(
        stored.some((k) => k.startsWith(`backups/${name}/${uuid}_`)),
        `diff of ${name} stored at backups/${name}/${uuid}_…: ${stored.join(', ')}`,
      );
      assert.ok(stored.includes(`backups/${name}.bs`), `${name}.bs written`);
    }
    assert.ok(stored.includes(`backups/s0/${uuids.get('s0')}_None`), 'first one is a full send');
    const full = `backups/s0/${uuids.get('s0')}_None`;
    const head = await client.send(new HeadObjectCommand({ Bucket: 'bkt-chain', Key: full }));
    assert.equal(head.ServerSideEncryption, 'AES256');
    assert.ok((head.ContentLength ?? 0) > 10 * MiB, 'the full diff spans several 5 MiB parts');
    const bs = (await objectBytes(client, 'bkt-chain', 'backups/s0.bs')).toString();
    assert.equal(bs, `${uuids.get('s0')}\tNone\t${head.ContentLength}\n`);
    const view = await s3.view('dest');
    assert.equal(view.diffs?.length, 3);
    assert.ok(view.diffs!.every((d) => d.atDest && d.store === 'dest' && !d.estimated));

    const dst = await createBtrfs({ size: 512 * MiB });
    const restore = join(dst.mnt, 'restore');
    await mkdir(restore);
    const down = await sync(s3Store('s3://bkt-chain/backups/', moto.endpoint), btrfsStore(restore));
    assert.equal(down.transferred.length, 3);
    for (const d of down.transferred) {
      // One parse gives the identity, guards, verifies and names the .part of each restore.
      const one = 'uuid-rewrite+receive-guard+uuid-rewrite';
      assert.ok(d.streams?.includes(one), `${d.streams?.join(' | ')}`);
    }
    for (const name of ['s0', 's1', 's2']) {
      const show = await subvolumeShow(join(restore, name));
      assert.equal(show.receivedUuid, uuids.get(name), `${name}: received UUID = original UUID`);
      assert.equal(show.readOnly, true);
      assert.equal(await treeDiff(join(snaps, name), join(restore, name)), '', `${name} identical`);
    }

    await makeTree(vol, 3);
    await snapshot(vol, join(snaps, 's3'));
    const later = await sync(btrfsStore(snaps), btrfsStore(restore));
    assert.equal(later.transferred.length, 1);
    const t = later.transferred[0]!.transfer;
    assert.equal(t.to.path, 's3');
    assert.equal(t.from?.path, 's2', 'incremental from the restored s2');
    assert.equal(await treeDiff(join(snaps, 's3'), join(restore, 's3')), '');
    await dst.cleanup();
  });

  it('S3 → S3 between prefixes copies server-side (copyDiffFrom)', async () => {
    const from = s3Store('s3://bkt-chain/backups/', moto.endpoint);
    const view = await from.view('source');
    const s0 = view.volumes.find((v) => v.path === 's0')!;
    const to = s3Store('s3://bkt-trash/copy/', moto.endpoint);
    const size = await to.copyDiffFrom(from, s0, null);
    const key = `copy/s0/${uuids.get('s0')}_None`;
    const a = await objectBytes(client, 'bkt-chain', `backups/s0/${uuids.get('s0')}_None`);
    const b = await objectBytes(client, 'bkt-trash', key);
    assert.equal(b.length, size);
    assert.ok(a.equals(b));
    const bs = (await objectBytes(client, 'bkt-trash', 'copy/s0.bs')).toString();
    assert.equal(bs, `${uuids.get('s0')}\tNone\t${size}\n`);
  });

  it('sync S3 → S3 copies every stored diff server-side, byte-identical, with no GetObject of a diff', async () => {
    // Every request of the sync goes through a counting proxy.
    const proxy = await startCountingProxy(moto.endpoint);
    const from = s3Store('s3://bkt-chain/backups/', proxy.endpoint);
    const to = s3Store('s3://bkt-chain/mirror/', proxy.endpoint);
    const report = await sync(from, to);
    assert.ok(report.transferred.length >= 3, `${report.transferred.length} diffs copied`);
    const seen = proxy.requests.map((r) => `${r.method} ${r.path}`);
    // A diff's key is <prefix>/<snapshot>/<uuid>_<parent uuid or None>.
    const diffKey = /^\/bkt-chain\/(backups|mirror)\/[^/]+\/[0-9a-f-]{36}_/;
    const diffGets = proxy.requests.filter((r) => r.method === 'GET' && diffKey.test(r.path));
    assert.deepEqual(diffGets, [], `no diff was downloaded:\n${seen.join('\n')}`);
    const diffWrites = proxy.requests.filter(
      (r) => r.method === 'PUT' && /^\/bkt-chain\/mirror\//.test(r.path) && diffKey.test(r.path),
    );
    assert.ok(
      diffWrites.length >= report.transferred.length,
      `the proxy saw the copies (PUT of each diff):\n${seen.join('\n')}`,
    );
    const src = (await keys(client, 'bkt-chain', 'backups/')).filter((k) => !k.endsWith('.bs'));
    for (const key of src) {
      const copy = key.replace(/^backups\//, 'mirror/');
      assert.ok(
        (await objectBytes(client, 'bkt-chain', copy)).equals(
          await objectBytes(client, 'bkt-chain', key),
        ),
        copy,
      );
    }
    assert.equal((await sync(from, to)).transferred.length, 0, 'a rerun copies nothing');
    await proxy.close();
  });

  it('kill -9 mid-upload, rerun: completes, uploads only the missing parts, bytes = fresh btrfs send', async (t) => {
    const big = await subvolume(join(src.mnt, 'bigvol'));
    await execa('dd', ['if=/dev/urandom', `of=${join(big, 'data.bin')}`, 'bs=1M', 'count=48']);
    const bigSnaps = join(src.mnt, 'bigsnaps');
    await mkdir(bigSnaps);
    const snap = await snapshot(big, join(bigSnaps, 'b0'));
    const uuid = (await subvolumeShow(snap)).uuid!;
    const key = `p/b0/${uuid}_None`;

    const proxy = await startCountingProxy(moto.endpoint);
    proxy.partDelayMs = 250;
    const args = ['-q', '--part-size', '5', '--jobs', '2', '--endpoint-url', proxy.endpoint];
    const first = runCli([...args, `${bigSnaps}/`, 's3://bkt-kill/p/'], MOTO_ENV);
    const deadline = Date.now() + 60_000;
    while (proxy.uploadedParts() < 4 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL', `killed mid-upload (stderr: ${killed.stderr})`);

    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: 'bkt-kill' }));
    assert.equal(open.Uploads?.length, 1, 'the upload was left open');
    const parts = await client.send(
      new ListPartsCommand({ Bucket: 'bkt-kill', Key: key, UploadId: open.Uploads![0]!.UploadId }),
    );
    const done = parts.Parts?.length ?? 0;
    assert.ok(done >= 4, `several parts were uploaded before the kill (${done})`);
    assert.equal((await keys(client, 'bkt-kill')).includes(key), false, 'no object yet');

    // The CLI sends compressed data (protocol 2) by default where both sides can.
    const fresh = await execa('btrfs', ['send', '-q', '--proto', '2', '--compressed-data', snap], {
      encoding: 'buffer',
    });
    const expected = fresh.stdout as Uint8Array;
    const total = Math.ceil(expected.length / (5 * MiB));

    proxy.reset();
    proxy.partDelayMs = 0;
    const second = runCli([...args, `${bigSnaps}/`, 's3://bkt-kill/p/'], MOTO_ENV);
    const rerun = await second.done;
    assert.equal(rerun.code, 0, rerun.stderr);
    const uploadedInRerun = proxy.requests.filter(isUploadPart).length;
    assert.equal(
      uploadedInRerun,
      total - done,
      `rerun uploaded ${uploadedInRerun} of ${total} parts`,
    );
    assert.match(rerun.stderr, new RegExp(`resumed an interrupted upload: ${done} part\\(s\\)`));
    t.diagnostic(
      `parts before kill -9: ${done}/${total}; UploadPart requests in rerun: ${uploadedInRerun}`,
    );
    const storedBytes = await objectBytes(client, 'bkt-kill', key);
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    assert.equal(storedBytes.length, expected.length);
    assert.equal(sha(storedBytes), sha(expected), 'stored object = a fresh btrfs send');
    const after = await client.send(new ListMultipartUploadsCommand({ Bucket: 'bkt-kill' }));
    assert.equal(after.Uploads?.length ?? 0, 0, 'no open upload left');
    await proxy.close();
  });

  it('a flipped byte in a stored diff: restore fails naming it, nothing complete-looking, scrub reports it', async (t) => {
    const s3 = s3Store('s3://bkt-flip/x/', moto.endpoint);
    await sync(btrfsStore(snaps), s3, { exclude: [/^s3$/] });
    const key = `x/s1/${uuids.get('s1')}_${uuids.get('s0')}`;
    const bytes = await objectBytes(client, 'bkt-flip', key);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x01;
    await client.send(new PutObjectCommand({ Bucket: 'bkt-flip', Key: key, Body: bytes }));

    const dst = await createBtrfs({ size: 512 * MiB });
    const restore = join(dst.mnt, 'r');
    await mkdir(restore);
    await assert.rejects(
      sync(s3Store('s3://bkt-flip/x/', moto.endpoint), btrfsStore(restore)),
      (err: Error) => {
        t.diagnostic(`restore error: ${err.message}`);
        assert.match(err.message, /s1/, `names the diff: ${err.message}`);
        assert.match(err.message, /CRC|corrupt/i, err.message);
        // Our verification stopped it (the guard's, in its one parse), not btrfs receive.
        assert.ok(findCause(err, StreamCorruptError), `our own error, got: ${err.message}`);
        assert.doesNotMatch(err.message, /crc32 mismatch/i);
        return true;
      },
    );
    const left = await readdir(restore);
    assert.ok(!left.includes('s1'), `no complete-looking s1: ${left.join(', ')}`);
    assert.ok(!left.includes('s2'), 's2 (built on s1) not received');
    const view = await btrfsStore(restore).view('dest');
    assert.ok(!view.volumes.some((v) => v.uuid === uuids.get('s1')));

    const report = await scrubStore(s3Store('s3://bkt-flip/x/', moto.endpoint));
    assert.equal(report.checked, 3);
    assert.deepEqual(
      report.bad.map((b) => b.diff.key),
      [key],
    );
    assert.match(report.bad[0]!.error, /CRC/);
    t.diagnostic(`scrub: ${report.bad[0]!.uri}: ${report.bad[0]!.error}`);

    let out = '';
    const io = {
      stdout: { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream,
      stderr: { write: () => true } as unknown as NodeJS.WritableStream,
    };
    const code = await buttersinkMain(
      ['--verify', '--endpoint-url', moto.endpoint, 's3://bkt-flip/x/'],
      io,
    );
    assert.equal(code, 1);
    assert.match(out, new RegExp(`BAD  s3://bkt-flip/${key}`));
    assert.match(out, /verified 3 diff\(s\).*1 bad/);
    await dst.cleanup();
  });

  it("a bucket laid out by hand in the original's format is listed and restored", async () => {
    const sendTo = async (args: string[]) =>
      Buffer.from(
        (await execa('btrfs', ['send', '-q', ...args], { encoding: 'buffer' }))
          .stdout as Uint8Array,
      );
    const u0 = uuids.get('s0')!;
    const u1 = uuids.get('s1')!;
    const full = await sendTo([join(snaps, 's0')]);
    const incr = await sendTo(['-p', join(snaps, 's0'), join(snaps, 's1')]);
    const put = (Key: string, Body: Buffer | string) =>
      client.send(new PutObjectCommand({ Bucket: 'bkt-legacy', Key, Body }));
    await put(`home/s0/${u0}_None`, full);
    await put(`home/s1/${u1}_${u0}`, incr);
    await put('home/s0.bs', `${u0}\tNone\t${full.length}\n`);
    await put('home/s1.bs', `${u1}\t${u0}\t${incr.length}\n`);
    await put('README.txt', 'not a diff');
    await put(`trash/home/old/${u0}_None`, full);
    await client.send(
      new CreateMultipartUploadCommand({ Bucket: 'bkt-legacy', Key: 'home/stale/x_None' }),
    );

    const cap = captureWarnings();
    try {
      const view = await s3Store('s3://bkt-legacy/', moto.endpoint).view('source');
      assert.deepEqual(view.volumes.map((v) => v.path).sort(), ['home/s0', 'home/s1']);
    } finally {
      cap.restore();
    }
    assert.ok(
      cap.warnings.some((w) => w.code === 'S3_UNKNOWN_KEY' && w.message.includes('README.txt')),
    );
    assert.ok(!cap.warnings.some((w) => w.message.includes('trash/')), 'trash/ skipped silently');

    let out = '';
    const io = {
      stdout: { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream,
      stderr: { write: () => true } as unknown as NodeJS.WritableStream,
    };
    const code = await buttersinkMain(
      ['-q', '-q', '-d', '--endpoint-url', moto.endpoint, 's3://bkt-legacy/'],
      io,
    );
    assert.equal(code, 0);
    assert.match(out, new RegExp(`${u0}  home/s0  full`));
    assert.match(out, new RegExp(`${u1}  home/s1  from home/s0`));
    assert.match(out, /TOTAL: 2 diff\(s\)/);
    assert.match(out, /partial: s3:\/\/bkt-legacy\/home\/stale\/x_None/);
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: 'bkt-legacy' }));
    assert.equal(open.Uploads?.length ?? 0, 0, 'listing with -d aborted the stale upload');

    const dst = await createBtrfs({ size: 512 * MiB });
    const restore = join(dst.mnt, 'r');
    await mkdir(restore);
    const done = await sync(s3Store('s3://bkt-legacy/', moto.endpoint), btrfsStore(restore));
    assert.equal(done.transferred.length, 2);
    for (const [name, uuid] of [
      ['s0', u0],
      ['s1', u1],
    ] as const) {
      const p = join(restore, 'home', name);
      assert.equal((await subvolumeShow(p)).receivedUuid, uuid);
      assert.equal(await treeDiff(join(snaps, name), p), '');
    }
    await dst.cleanup();
  });

  it('--delete moves unneeded diffs to trash/; -n changes nothing', async () => {
    const dir = join(src.mnt, 'tsnaps');
    await mkdir(dir);
    const x = await snapshot(vol, join(dir, 'x'));
    const ux = (await subvolumeShow(x)).uuid!;
    await sync(btrfsStore(dir), s3Store('s3://bkt-trash/t/', moto.endpoint));
    await execa('btrfs', ['subvolume', 'delete', x]);
    await makeTree(vol, 9);
    const y = await snapshot(vol, join(dir, 'y'));
    const uy = (await subvolumeShow(y)).uuid!;
    const before = await keys(client, 'bkt-trash');
    await sync(btrfsStore(dir), s3Store('s3://bkt-trash/t/', moto.endpoint), {
      delete: true,
      dryRun: true,
    });
    assert.deepEqual(await keys(client, 'bkt-trash'), before, '-n touched nothing');
    await sync(btrfsStore(dir), s3Store('s3://bkt-trash/t/', moto.endpoint), { delete: true });
    const now = await keys(client, 'bkt-trash');
    assert.ok(now.includes(`trash/t/x/${ux}_None`), now.join(', '));
    assert.ok(!now.includes(`t/x/${ux}_None`));
    assert.ok(now.some((k) => k.startsWith(`t/y/${uy}_`)));
    const view = await s3Store('s3://bkt-trash/t/', moto.endpoint).view('dest');
    assert.deepEqual(
      view.volumes.map((v) => v.path),
      ['y'],
    );
    // --delete acts on the destination only: the source keeps its snapshot.
    assert.deepEqual(
      (await btrfsStore(dir).view('source')).volumes.map((v) => v.path),
      ['y'],
    );
    assert.equal((await subvolumeShow(y)).uuid, uy);
  });
});
