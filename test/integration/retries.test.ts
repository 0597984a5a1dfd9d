/**
 * Retries against the real things: an upload through heavy S3 throttling
 * (SlowDown) slows down and completes; ranged GETs whose bodies are cut short
 * are retried with backoff and, when they keep failing, fail naming the object,
 * the range, the attempts and the last cause; many retries leave no abort
 * listener behind (no MaxListenersExceededWarning); and an SSH connection that
 * dies mid-push (its sshd killed) is reported as a lost connection.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Download } from '../../src/stages/s3-download.js';
import { s3Upload } from '../../src/stages/s3-upload.js';
import { setLogger } from '../../src/log.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import type { Store } from '../../src/stores/store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, SshLocation } from '../../src/stores/uri.js';
import { runPipeline } from '../../src/streams/pipeline.js';
import { sinkStage, sourceStage } from '../../src/streams/stage.js';
import { sync } from '../../src/sync.js';
import {
  createBtrfs,
  deterministicBytes,
  makeTree,
  snapshot,
  subvolume,
} from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { startFaultProxy } from '../fixtures/fault-proxy.js';
import type { FaultProxy } from '../fixtures/fault-proxy.js';
import { isUploadPart, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto, ProxiedRequest } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';

const MiB = 1024 * 1024;
/** Body bytes a truncated GET passes on before its connection is cut. */
const TRUNCATE_AFTER_BYTES = 1024;
const SLOW_DOWN = { kind: 'status', code: 503 } as const;
const TRUNCATE = { kind: 'truncate', afterBytes: TRUNCATE_AFTER_BYTES } as const;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Collects the warnings the process emits while `fn` runs. */
async function warningsDuring<T>(fn: () => Promise<T>): Promise<{ value: T; warnings: Error[] }> {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const value = await fn();
    // Warnings are emitted on the next tick.
    await new Promise((r) => setImmediate(r));
    return { value, warnings };
  } finally {
    process.off('warning', onWarning);
  }
}

/** Reads `stage` to the end; resolves with its bytes, or rejects with its error. */
async function collect(stage: ReturnType<typeof sourceStage<unknown>>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = sinkStage(
    'collect',
    new Writable({
      write: (c: Buffer, _e, cb) => {
        chunks.push(c);
        cb();
      },
    }),
  );
  await runPipeline([stage, sink]);
  return Buffer.concat(chunks);
}

const s3Prereqs = integrationPrereqs({ moto: true });

describe(
  'S3: retries slow down, back off, and fail naming what failed',
  { skip: s3Prereqs.skip },
  () => {
    let moto: Moto;
    let direct: S3Client;
    let proxy: FaultProxy;
    let restoreEnv: () => void;
    let restoreLogger: () => void;
    const clients: S3Client[] = [];
    const bucket = 'retries';
    const key = `obj/${randomUUID()}`;
    const body = deterministicBytes(6 * MiB, 'retries');

    const client = (extra: Parameters<typeof createS3Client>[0] = {}): S3Client => {
      const c = createS3Client({ endpoint: proxy.endpoint, requestTimeoutMs: 5000, ...extra });
      clients.push(c);
      return c;
    };
    const isGet = (r: ProxiedRequest) => r.method === 'GET' && r.path.endsWith(key);

    before(async () => {
      const prev = setLogger({ warn: () => undefined, debug: () => undefined });
      restoreLogger = () => setLogger(prev);
      restoreEnv = useMotoEnv();
      moto = await startMoto();
      direct = createS3Client({ endpoint: moto.endpoint });
      await direct.send(new CreateBucketCommand({ Bucket: bucket }));
      await direct.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      proxy = await startFaultProxy(moto.endpoint);
    });
    after(async () => {
      for (const c of clients) c.destroy();
      direct?.destroy();
      await proxy?.close();
      restoreEnv?.();
      restoreLogger?.();
    });

    it(
      'an upload through 60% SlowDown answers (one part throttled 5 times running) completes and verifies',
      { timeout: 90_000 },
      async () => {
        const upKey = `up/${randomUUID()}`;
        const data = deterministicBytes(6 * MiB, 'throttled');
        let part2 = 0;
        let complete = 0;
        // 6 of the upload's 10 requests: part 2 on its first 5 attempts (more than the old
        // 5-attempt limit) and the first CompleteMultipartUpload (not carried out: safe to retry).
        proxy.fault = (r) => {
          if (!r.path.endsWith(upKey)) return undefined;
          if (isUploadPart(r) && r.query.get('partNumber') === '2' && part2++ < 5) return SLOW_DOWN;
          if (r.method === 'POST' && r.query.has('uploadId') && complete++ < 1) return SLOW_DOWN;
          return undefined;
        };
        const c = client();
        const strategy = (await c.config.retryStrategy()) as { mode?: string };
        assert.equal(strategy.mode, 'adaptive');
        const parts = [0, 5 * MiB].map((start, i, all) => ({
          partNumber: i + 1,
          offset: start,
          data: data.subarray(start, all[i + 1] ?? data.length),
          last: i === all.length - 1,
        }));
        try {
          const up = s3Upload({ client: c, bucket, key: upKey, jobs: 1 });
          await runPipeline([sourceStage('parts', Readable.from(parts), Promise.resolve()), up]);
          const res = await up.result;
          assert.equal(res.parts, 2);
        } finally {
          proxy.fault = () => undefined;
        }
        const throttled = proxy.injected.filter((f) => f.req.path.endsWith(upKey)).length;
        assert.equal(throttled, 6, 'requests throttled');
        const got = await direct.send(new GetObjectCommand({ Bucket: bucket, Key: upKey }));
        const bytes = Buffer.from(await got.Body!.transformToByteArray());
        assert.equal(
          createHash('sha256').update(bytes).digest('hex'),
          createHash('sha256').update(data).digest('hex'),
          'the stored object is the bytes sent',
        );
      },
    );

    it(
      'ranged GETs cut short on every attempt fail naming the object, range, attempts and cause',
      { timeout: 30_000 },
      async () => {
        proxy.fault = (r) => (isGet(r) ? TRUNCATE : undefined);
        const started = performance.now();
        try {
          const err: unknown = await collect(
            s3Download({
              client: client({ maxAttempts: 1 }),
              bucket,
              key,
              size: body.length,
              etag: undefined,
              rangeSize: 5 * MiB,
              jobs: 1,
              attempts: 3,
              retryDelayMs: 50,
            }),
          ).then(
            () => undefined,
            (e: unknown) => e,
          );
          assert.ok(err instanceof Error, 'the download failed');
          assert.match(
            err.message,
            new RegExp(
              `^s3://${escapeRe(bucket)}/${escapeRe(key)}: GetObject bytes 0-${5 * MiB - 1} failed after 3 attempts: ` +
                `connection reset, after ${TRUNCATE_AFTER_BYTES} of ${5 * MiB} bytes \\(last: .+\\)$`,
            ),
          );
          assert.doesNotMatch(err.message, /\n/);
          // Backoff: 2 waits of at least 25 ms and 50 ms (jittered 50 and 100 ms).
          assert.ok(performance.now() - started >= 75);
        } finally {
          proxy.fault = () => undefined;
        }
      },
    );

    it(
      'many range retries leave no abort listener behind (no MaxListenersExceededWarning)',
      { timeout: 60_000 },
      async () => {
        let cut = 0;
        proxy.fault = (r) => (isGet(r) && cut++ < 25 ? TRUNCATE : undefined);
        try {
          const { value, warnings } = await warningsDuring(() =>
            collect(
              s3Download({
                client: client({ maxAttempts: 1 }),
                bucket,
                key,
                size: body.length,
                rangeSize: 5 * MiB,
                jobs: 1,
                attempts: 30,
                retryDelayMs: 1,
                maxRetryDelayMs: 2,
              }),
            ),
          );
          assert.equal(cut, 27, '25 GETs were cut short, then both ranges read');
          assert.ok(value.equals(body), 'the download is the object');
          assert.deepEqual(
            warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
            [],
          );
        } finally {
          proxy.fault = () => undefined;
        }
      },
    );
  },
);

const sshPrereqs = integrationPrereqs({ root: true, btrfs: true, sshd: true });

describe(
  'SSH: a connection that dies mid-transfer is reported as lost',
  { skip: sshPrereqs.skip },
  () => {
    let sshd: Sshd;
    let local: BtrfsFs;
    let remote: BtrfsFs;
    let snaps: string;
    const stores: Store[] = [];
    let restoreLogger: (() => void) | undefined;

    before(async () => {
      const prev = setLogger({ warn: () => undefined, debug: () => undefined });
      restoreLogger = () => setLogger(prev);
      sshd = await startSshd();
      local = await createBtrfs({ size: 512 * MiB, label: 'retries local' });
      remote = await createBtrfs({ size: 512 * MiB, label: 'retries remote' });
      const vol = await subvolume(join(local.mnt, 'vol'));
      await makeTree(vol, 0, { bigMiB: 128, xattrs: false });
      snaps = join(local.mnt, 'snaps');
      await mkdir(snaps);
      await snapshot(vol, join(snaps, 'big0'));
    });
    after(async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      restoreLogger?.();
      await sshd?.stop();
      await remote?.cleanup();
      await local?.cleanup();
    });

    it(
      'push: the sshd of the connection killed mid-push fails with "connection lost during …"',
      { timeout: 60_000 },
      async () => {
        const dir = join(remote.mnt, 'killed-push');
        await mkdir(dir);
        const before = new Set(sshd.sessionPids());
        const src = new BtrfsStore(parseLocation(`${snaps}/`) as BtrfsLocation);
        const dst = new SshStore(parseLocation(`ssh://${sshd.alias}${dir}/`) as SshLocation, {
          home: sshd.home,
          agent: false,
          remoteCommand: sshd.remoteCommand,
          mode: 'a',
        });
        stores.push(src, dst);
        let killed: number[] = [];
        const err: unknown = await sync(src, dst, {
          onProgress: (_t, p) => {
            if (killed.length > 0 || p.bytes === 0) return;
            killed = sshd.sessionPids().filter((pid) => !before.has(pid));
            for (const pid of killed) process.kill(pid, 'SIGKILL');
          },
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(killed.length > 0, 'the sshd of the connection was killed mid-push');
        assert.ok(err instanceof Error, 'the push failed');
        assert.match(err.message, /^big0: ssh:\/\/bstest: connection lost during push \(/);
        assert.doesNotMatch(err.message, /\n/);
      },
    );

    it(
      'the sshd of the connection killed before the remote answered: "connection lost during the handshake"',
      { timeout: 60_000 },
      async () => {
        const before = new Set(sshd.sessionPids());
        const store = new SshStore(parseLocation(`ssh://${sshd.alias}${snaps}/`) as SshLocation, {
          home: sshd.home,
          agent: false,
          // The remote command takes its time to start: the connection dies meanwhile.
          remoteCommand: `sleep 2; ${sshd.remoteCommand}`,
          mode: 'r',
        });
        stores.push(store);
        const listing = store.view('source').then(
          () => undefined,
          (e: unknown) => e,
        );
        let session: number[] = [];
        const deadline = Date.now() + 20_000;
        while (session.length === 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          session = sshd.sessionPids().filter((pid) => !before.has(pid));
        }
        assert.ok(session.length > 0, 'the connection is up');
        await new Promise((r) => setTimeout(r, 500));
        for (const pid of session) process.kill(pid, 'SIGKILL');
        const err = await listing;
        assert.ok(err instanceof Error, 'the listing failed');
        assert.match(err.message, /^ssh:\/\/bstest: connection lost during the handshake/);
        assert.doesNotMatch(err.message, /\n/);
      },
    );
  },
);
