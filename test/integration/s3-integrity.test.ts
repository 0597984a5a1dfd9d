/**
 * End-to-end integrity of stored diffs, against moto_server on 127.0.0.1 and real
 * loop-mounted btrfs: every uploaded diff records its whole-stream SHA-256 and stream
 * version as user metadata; a restore checks them before btrfs receive sees END; the
 * scrub checks them; damage the per-command CRCs cannot see (a changed header version
 * byte, a dropped whole command) is caught naming the key; diffs without the metadata
 * (the original buttersink's) still restore; a resumed upload and an S3 → S3 copy keep
 * the right digest.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { Cmd } from '../../src/btrfs/send-stream/constants.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { buttersinkMain } from '../../src/cli.js';
import { setLogger } from '../../src/log.js';
import type { Warning } from '../../src/log.js';
import { META_SHA256, META_STREAM_VERSION } from '../../src/stages/digest-check.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { NO_DIGEST_NOTE, scrubStore } from '../../src/stores/s3/scrub.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { startCountingProxy, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { waitFor } from '../fixtures/wait-for.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true, moto: true });
const MiB = 1024 * 1024;
const BUCKET = 'bkt-integrity';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

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

async function objectBytes(client: S3Client, key: string, bucket = BUCKET): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function metadataOf(client: S3Client, key: string, bucket = BUCKET) {
  return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata ?? {};
}

async function diffKeys(client: S3Client, prefix: string, bucket = BUCKET): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (res.Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => !k.endsWith('.bs'))
    .sort();
}

/** Replaces a stored object's bytes, keeping its user metadata (as damage at rest would). */
async function replaceKeepingMetadata(client: S3Client, key: string, body: Buffer) {
  const Metadata = await metadataOf(client, key);
  assert.ok(Metadata[META_SHA256], `${key} has a recorded digest to keep`);
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata }));
}

/** Byte ranges of the commands of a v1/v2 send stream: [start, end) after the 17-byte header. */
function commands(bytes: Buffer): { cmd: number; start: number; end: number }[] {
  const out: { cmd: number; start: number; end: number }[] = [];
  for (let at = 17; at < bytes.length;) {
    const end = at + 10 + bytes.readUInt32LE(at);
    out.push({ cmd: bytes.readUInt16LE(at + 4), start: at, end });
    at = end;
  }
  return out;
}

/** What a failed restore may leave in `dir` for `name`: nothing, or only its `.part`. */
async function assertNotReceived(dir: string, name: string) {
  const left = await readdir(dir).catch(() => [] as string[]);
  assert.ok(!left.includes(name), `no ${name} under its final name: ${left.join(', ')}`);
  const mine = left.filter((e) => e.startsWith(name));
  assert.ok(
    mine.every((e) => e === `${name}.part`),
    `only a .part may be left: ${mine.join(', ')}`,
  );
}

async function verifyCli(endpoint: string, uri: string): Promise<{ code: number; out: string }> {
  let out = '';
  const io = {
    stdout: { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream,
    stderr: { write: () => true } as unknown as NodeJS.WritableStream,
  };
  const code = await buttersinkMain(['--verify', '--endpoint-url', endpoint, uri], io);
  return { code, out };
}

function captureWarnings(): { warnings: Warning[]; restore: () => void } {
  const warnings: Warning[] = [];
  const prev = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  return { warnings, restore: () => setLogger(prev) };
}

describe(
  'S3 integrity: whole-stream digests (moto_server + loop btrfs)',
  { skip: prereqs.skip },
  () => {
    let moto: Moto;
    let client: S3Client;
    let restoreEnv: () => void;
    let src: BtrfsFs;
    let dst: BtrfsFs;
    let snaps: string;
    const uuids = new Map<string, string>();
    const key = (prefix: string, name: string, from: string | null) =>
      `${prefix}/${name}/${uuids.get(name)}_${from === null ? 'None' : uuids.get(from)}`;

    before(async () => {
      restoreEnv = useMotoEnv();
      moto = await startMoto();
      client = createS3Client({ endpoint: moto.endpoint });
      await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      src = await createBtrfs({ size: 768 * MiB });
      dst = await createBtrfs({ size: 768 * MiB });
      const vol = await subvolume(join(src.mnt, 'vol'));
      snaps = join(src.mnt, 'snaps');
      await mkdir(snaps);
      await makeTree(vol, 0, { bigMiB: 12 });
      for (let i = 0; i < 3; i++) {
        if (i > 0) await makeTree(vol, i);
        const p = await snapshot(vol, join(snaps, `s${i}`));
        uuids.set(`s${i}`, (await subvolumeShow(p)).uuid!);
      }
      await sync(btrfsStore(snaps), s3Store(`s3://${BUCKET}/a/`, moto.endpoint));
    });

    after(async () => {
      await dst?.cleanup();
      await src?.cleanup();
      client?.destroy();
      await moto?.stop();
      restoreEnv?.();
    });

    it('every uploaded diff records the SHA-256 of its bytes and its stream version; restore and scrub verify them', async () => {
      const stored = await diffKeys(client, 'a/');
      assert.deepEqual(stored, [key('a', 's0', null), key('a', 's1', 's0'), key('a', 's2', 's1')]);
      for (const k of stored) {
        const bytes = await objectBytes(client, k);
        const meta = await metadataOf(client, k);
        assert.equal(meta[META_SHA256], sha(bytes), `${k}: digest of the stored bytes`);
        assert.equal(meta[META_STREAM_VERSION], String(bytes.readUInt32LE(13)), k);
      }
      const full = await objectBytes(client, key('a', 's0', null));
      assert.ok(full.length > 10 * MiB, 'the full diff went as a multipart upload');
      const open = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      assert.equal(open.Uploads?.length ?? 0, 0);

      const report = await scrubStore(s3Store(`s3://${BUCKET}/a/`, moto.endpoint));
      assert.equal(report.checked, 3);
      assert.deepEqual(report.bad, []);
      assert.deepEqual(report.notes, [], 'every diff had a digest to check');

      const restore = join(dst.mnt, 'good');
      await mkdir(restore);
      const done = await sync(s3Store(`s3://${BUCKET}/a/`, moto.endpoint), btrfsStore(restore));
      assert.equal(done.transferred.length, 3);
      const d = await execa(
        'diff',
        ['-r', '--no-dereference', join(snaps, 's2'), join(restore, 's2')],
        {
          reject: false,
        },
      );
      assert.equal(d.exitCode, 0, d.stdout);
    });

    it('a stored diff whose header version byte was changed 1 → 2: restore fails naming the key before END, --verify reports it', async (t) => {
      // A v1 stream (the default is protocol 2 where both sides can) to flip to 2.
      await sync(btrfsStore(snaps), s3Store(`s3://${BUCKET}/flip/`, moto.endpoint), {
        compressedData: false,
      });
      const k = key('flip', 's1', 's0');
      const bytes = await objectBytes(client, k);
      assert.equal(bytes.readUInt32LE(13), 1, 'a v1 stream');
      bytes[13] = 2;
      await replaceKeepingMetadata(client, k, bytes);

      const restore = join(dst.mnt, 'flip');
      await mkdir(restore);
      await assert.rejects(
        sync(s3Store(`s3://${BUCKET}/flip/`, moto.endpoint), btrfsStore(restore)),
        (err: Error) => {
          t.diagnostic(`restore error: ${err.message}`);
          assert.ok(err.message.includes(`s3://${BUCKET}/${k}: `), `names the key: ${err.message}`);
          assert.match(err.message, /the diff is damaged$/);
          assert.ok(!err.message.includes('\n'), 'one line');
          return true;
        },
      );
      assert.equal((await subvolumeShow(join(restore, 's0'))).receivedUuid, uuids.get('s0'));
      await assertNotReceived(restore, 's1');
      await assertNotReceived(restore, 's2');
      const view = await btrfsStore(restore).view('dest');
      assert.ok(!view.volumes.some((v) => v.uuid === uuids.get('s1')));

      const { code, out } = await verifyCli(moto.endpoint, `s3://${BUCKET}/flip/`);
      t.diagnostic(out);
      assert.equal(code, 1);
      assert.match(out, new RegExp(`^BAD  s3://${BUCKET}/${k}: .*damaged$`, 'm'));
      assert.match(out, /verified 3 diff\(s\).*: 1 bad/);
    });

    it('a stored diff missing one whole WRITE command: restore fails with the SHA-256 mismatch, scrub reports it', async (t) => {
      await sync(btrfsStore(snaps), s3Store(`s3://${BUCKET}/drop/`, moto.endpoint), {
        exclude: [/^s[12]$/],
      });
      const k = key('drop', 's0', null);
      const bytes = await objectBytes(client, k);
      const writes = commands(bytes).filter((c) => c.cmd === Cmd.WRITE);
      assert.ok(writes.length > 10);
      const gone = writes[Math.floor(writes.length / 2)]!;
      const damaged = Buffer.concat([bytes.subarray(0, gone.start), bytes.subarray(gone.end)]);
      await replaceKeepingMetadata(client, k, damaged);

      const restore = join(dst.mnt, 'drop');
      await mkdir(restore);
      const expected = `s3://${BUCKET}/${k}: whole-stream SHA-256 mismatch: stored ${sha(bytes)}, read ${sha(damaged)}; the diff is damaged`;
      await assert.rejects(
        sync(s3Store(`s3://${BUCKET}/drop/`, moto.endpoint), btrfsStore(restore)),
        (err: Error) => {
          t.diagnostic(`restore error: ${err.message}`);
          assert.ok(err.message.endsWith(expected), err.message);
          return true;
        },
      );
      await assertNotReceived(restore, 's0');
      assert.deepEqual((await btrfsStore(restore).view('dest')).volumes, []);

      const report = await scrubStore(s3Store(`s3://${BUCKET}/drop/`, moto.endpoint));
      assert.deepEqual(
        report.bad.map((b) => [b.uri, b.error]),
        [[`s3://${BUCKET}/${k}`, expected.slice(`s3://${BUCKET}/${k}: `.length)]],
      );
    });

    it('diffs without the metadata (the original buttersink) restore as before; scrub notes them as info', async () => {
      const sendOf = async (args: string[]) =>
        Buffer.from(
          (await execa('btrfs', ['send', '-q', ...args], { encoding: 'buffer' }))
            .stdout as Uint8Array,
        );
      const u0 = uuids.get('s0')!;
      const u1 = uuids.get('s1')!;
      const full = await sendOf([join(snaps, 's0')]);
      const incr = await sendOf(['-p', join(snaps, 's0'), join(snaps, 's1')]);
      for (const [k, body] of [
        [`legacy/s0/${u0}_None`, full],
        [`legacy/s1/${u1}_${u0}`, incr],
      ] as const) {
        await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: k, Body: body }));
        assert.deepEqual(await metadataOf(client, k), {});
      }
      const restore = join(dst.mnt, 'legacy');
      await mkdir(restore);
      const done = await sync(
        s3Store(`s3://${BUCKET}/legacy/`, moto.endpoint),
        btrfsStore(restore),
      );
      assert.equal(done.transferred.length, 2);
      assert.equal((await subvolumeShow(join(restore, 's1'))).receivedUuid, u1);

      const report = await scrubStore(s3Store(`s3://${BUCKET}/legacy/`, moto.endpoint));
      assert.deepEqual(report.bad, []);
      assert.deepEqual(
        report.notes.map((n) => n.note),
        [NO_DIGEST_NOTE, NO_DIGEST_NOTE],
      );
      const { code, out } = await verifyCli(moto.endpoint, `s3://${BUCKET}/legacy/`);
      assert.equal(code, 0, out);
      assert.match(
        out,
        /^ok {3}s3:\/\/\S+ \(info: no whole-stream checksum \(written by an older buttersink\)\)$/m,
      );
    });

    it('an interrupted upload, resumed: the recorded digest is that of the whole stream', async (t) => {
      const big = await subvolume(join(src.mnt, 'bigvol'));
      await execa('dd', ['if=/dev/urandom', `of=${join(big, 'data.bin')}`, 'bs=1M', 'count=24']);
      const dir = join(src.mnt, 'bigsnaps');
      await mkdir(dir);
      const snap = await snapshot(big, join(dir, 'b0'));
      const uuid = (await subvolumeShow(snap)).uuid!;
      const k = `resume/b0/${uuid}_None`;
      const proxy = await startCountingProxy(moto.endpoint);
      proxy.partDelayMs = 300;
      const ac = new AbortController();
      const first = sync(
        btrfsStore(dir),
        s3Store(`s3://${BUCKET}/resume/`, proxy.endpoint, { jobs: 1 }),
        { signal: ac.signal },
      );
      const deadline = Date.now() + 60_000;
      while (proxy.uploadedParts() < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      ac.abort();
      await assert.rejects(first);
      // Parts already handed to the proxy finish upstream: wait for their answers
      // (a part whose body the abort cut off is dropped upstream as well).
      await waitFor(() => proxy.requests.every((r) => r.status !== undefined || r.aborted), {
        what: 'every proxied request to be answered or dropped',
      });
      const open = await client.send(
        new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'resume/' }),
      );
      assert.equal(open.Uploads?.length, 1, 'the upload was left open');
      const parts = await client.send(
        new ListPartsCommand({ Bucket: BUCKET, Key: k, UploadId: open.Uploads![0]!.UploadId }),
      );
      assert.ok(
        (parts.Parts?.length ?? 0) >= 2,
        `parts uploaded before the abort: ${parts.Parts?.length}`,
      );

      proxy.partDelayMs = 0;
      const cap = captureWarnings();
      try {
        await sync(btrfsStore(dir), s3Store(`s3://${BUCKET}/resume/`, proxy.endpoint));
      } finally {
        cap.restore();
      }
      const resumed = cap.warnings.find((w) => w.code === 'UPLOAD_RESUMED');
      assert.ok(resumed, 'the rerun resumed the open upload');
      const skipped = resumed.details?.skippedParts as number;
      assert.ok(skipped >= 2, `parts skipped: ${skipped}`);
      t.diagnostic(resumed.message);

      const stored = await objectBytes(client, k);
      // sync() sends compressed data (protocol 2) by default where both sides can.
      const fresh = (
        await execa('btrfs', ['send', '-q', '--proto', '2', '--compressed-data', snap], {
          encoding: 'buffer',
        })
      ).stdout as Uint8Array;
      assert.equal(sha(stored), sha(fresh), 'stored object = a fresh btrfs send');
      const meta = await metadataOf(client, k);
      assert.equal(
        meta[META_SHA256],
        sha(stored),
        'digest of the whole stream, skipped parts included',
      );
      assert.equal(meta[META_STREAM_VERSION], '2', 'compressed data (protocol 2) by default');
      await proxy.close();
    });

    it('S3 → S3 copies keep the metadata (CopyObject and multipart copy); the copy scrubs verified', async () => {
      const from = s3Store(`s3://${BUCKET}/a/`, moto.endpoint);
      for (const [prefix, extra] of [
        ['copy1', {}],
        ['copy2', { maxSingleCopy: 1 }],
      ] as const) {
        const report = await sync(from, s3Store(`s3://${BUCKET}/${prefix}/`, moto.endpoint, extra));
        assert.equal(report.transferred.length, 3);
        for (const k of await diffKeys(client, 'a/')) {
          const copy = k.replace(/^a\//, `${prefix}/`);
          const meta = await metadataOf(client, copy);
          assert.deepEqual(meta, await metadataOf(client, k), `${copy} keeps the metadata`);
          assert.equal(meta[META_SHA256], sha(await objectBytes(client, copy)));
        }
      }
      const scrub = await scrubStore(s3Store(`s3://${BUCKET}/copy2/`, moto.endpoint));
      assert.deepEqual(scrub.bad, []);
      assert.deepEqual(scrub.notes, []);
    });
  },
);
