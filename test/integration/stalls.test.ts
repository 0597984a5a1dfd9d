/**
 * Nothing waits for ever, against the real things: S3 requests that moto_server
 * (behind a stalling proxy) never answers time out, are retried and fail with
 * one line; a remote `buttersink --server` stopped with SIGSTOP fails a push
 * or a pull within the idle limit; a host that stops answering SSH keepalives
 * is dropped; and a client killed while the remote `btrfs receive`/`send` is
 * stopped leaves no server, btrfs or sshd process of its session behind.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { setLogger } from '../../src/log.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import type { S3StoreOptions } from '../../src/stores/s3/s3-store.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import type { SshStoreOptions } from '../../src/stores/ssh/ssh-store.js';
import type { Store } from '../../src/stores/store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location, SshLocation } from '../../src/stores/uri.js';
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
import { runCli, startCli } from '../fixtures/cli.js';
import { MOTO_ENV, isUploadPart, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { childPids, pidsWithCommandLine, startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { startStallProxy } from '../fixtures/stall-proxy.js';
import type { StallProxy } from '../fixtures/stall-proxy.js';

const MiB = 1024 * 1024;

/** Polls `fn` every 100 ms until it holds; throws naming `what` after `ms`. */
async function waitUntil(
  what: string,
  fn: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `stage`'s bytes into nothing; resolves with the error it failed with. */
async function failureOf(stage: ReturnType<typeof sourceStage<unknown>>): Promise<Error> {
  const sink = sinkStage(
    'discard',
    new Writable({
      write: (_c, _e, cb) => cb(),
    }),
  );
  const err: unknown = await runPipeline([stage, sink]).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'the read failed');
  return err;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

const s3Prereqs = integrationPrereqs({ moto: true });

describe(
  'S3: requests that stall time out, are retried, then fail in one line',
  { skip: s3Prereqs.skip },
  () => {
    let moto: Moto;
    let direct: S3Client;
    let proxy: StallProxy;
    let restoreEnv: () => void;
    const bucket = 'stall';
    const key = `backups/s0/${randomUUID()}_None`;
    const stores: S3Store[] = [];

    const store = (extra: S3StoreOptions = {}): S3Store => {
      const s = new S3Store(parseLocation(`s3://${bucket}/backups/`) as S3Location, {
        endpoint: proxy.endpoint,
        requestTimeoutMs: 1000,
        maxAttempts: 5,
        ...extra,
      });
      stores.push(s);
      return s;
    };

    before(async () => {
      restoreEnv = useMotoEnv();
      moto = await startMoto();
      direct = createS3Client({ endpoint: moto.endpoint });
      await direct.send(new CreateBucketCommand({ Bucket: bucket }));
      await direct.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: deterministicBytes(256 * 1024, 'o'),
        }),
      );
      proxy = await startStallProxy(moto.endpoint);
    });
    beforeEach(() => {
      proxy.stall = () => undefined;
      proxy.requests.length = 0;
      proxy.stalled.length = 0;
    });
    after(async () => {
      for (const s of stores) await s.close();
      direct?.destroy();
      await proxy?.close();
      await moto?.stop();
      restoreEnv?.();
    });

    it(
      'a GET never answered: 5 attempts of 1 s, then "GetObject timed out after 1 s (5 attempts)"',
      { timeout: 60_000 },
      async () => {
        proxy.stall = (r) =>
          r.method === 'GET' && r.path === `/${bucket}/${key}` ? 'request' : undefined;
        const started = performance.now();
        const err = await failureOf(store().download({ key }));
        const took = performance.now() - started;
        assert.match(
          err.message,
          new RegExp(
            `^s3://${bucket}/${escapeRe(key)}: GetObject bytes 0-262143 failed: timed out after 1 s \\(5 attempts\\)$`,
          ),
        );
        assert.equal(proxy.stalled.length, 5, 'each attempt reached the server');
        assert.ok(took >= 5000 && took < 30_000, `failed after ${Math.round(took)} ms`);
      },
    );

    it(
      'a GET whose body stops mid-way: retried, then "GetObject response stalled: no data for 1 s"',
      { timeout: 60_000 },
      async () => {
        proxy.stall = (r) =>
          r.method === 'GET' && r.path === `/${bucket}/${key}` ? 'response-body' : undefined;
        const err = await failureOf(store().download({ key }));
        assert.match(
          err.message,
          new RegExp(
            `^s3://${bucket}/${escapeRe(key)}: GetObject bytes 0-262143 failed after 5 attempts: timed out, after 1024 of 262144 bytes \\(last: GetObject response stalled: no data for 1 s\\)$`,
          ),
        );
        assert.doesNotMatch(err.message, /\n/);
        assert.equal(proxy.stalled.length, 5, 'the range was fetched 5 times');
      },
    );

    it(
      'an UploadPart never answered: 5 attempts of 1 s, then "UploadPart timed out after 1 s (5 attempts)"',
      { timeout: 60_000 },
      async () => {
        proxy.stall = (r) => (isUploadPart(r) ? 'request' : undefined);
        const s = store({ partSize: 5 * MiB, jobs: 1 });
        const to = { uuid: randomUUID(), path: 'up0' };
        const stages = await s.receive(to, null);
        const source = sourceStage('bytes', Readable.from([deterministicBytes(12 * MiB, 'up')]));
        const err: unknown = await runPipeline([source, ...stages.transforms, stages.sink]).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof Error, 'the upload failed');
        assert.match(
          err.message,
          new RegExp(
            `^s3://${bucket}/backups/up0/${to.uuid}_None: .*UploadPart timed out after 1 s \\(5 attempts\\)$`,
          ),
        );
        const part1 = proxy.stalled.filter(
          (r) => isUploadPart(r) && r.query.get('partNumber') === '1',
        );
        assert.equal(part1.length, 5, 'part 1 was sent 5 times');
      },
    );

    it(
      'the CLI takes --timeout: a stalled listing fails with one line after 8 attempts, exit 1',
      { timeout: 60_000 },
      async () => {
        proxy.stall = (r) =>
          r.method === 'GET' && r.query.has('list-type') ? 'request' : undefined;
        const r = await runCli(
          ['--timeout', '1', '--endpoint-url', proxy.endpoint, `s3://${bucket}/backups/`],
          'buttersink',
          { env: { ...MOTO_ENV } },
        );
        assert.equal(r.exitCode, 1, r.stderr);
        assert.match(
          r.stderr.trim().split('\n').at(-1)!,
          new RegExp(
            `^buttersink: .*s3://${bucket}/backups/.*ListObjectsV2 timed out after 1 s \\(8 attempts\\)$`,
          ),
        );
        assert.equal(proxy.stalled.length, 8);
      },
    );
  },
);

const sshPrereqs = integrationPrereqs({ root: true, btrfs: true, sshd: true });

/** The process's state letter (`R`, `S`, `T` stopped, `Z` zombie), or undefined once it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** True while `pid` runs (a zombie has ended). */
function running(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X';
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function descendants(pid: number): number[] {
  return childPids(pid).flatMap((c) => [c, ...descendants(c)]);
}

/** The `btrfs <op>` child of a server serving `needle`, with that server: undefined while none runs. */
function serverWithBtrfs(
  needle: string,
  op: 'send' | 'receive',
): { server: number; btrfs: number } | undefined {
  for (const server of pidsWithCommandLine(needle)) {
    if (!cmdline(server).includes('--server')) continue;
    const btrfs = descendants(server).find((p) => {
      const argv = cmdline(p).split(' ');
      return /(^|\/)btrfs$/.test(argv[0] ?? '') && argv.includes(op);
    });
    if (btrfs !== undefined) return { server, btrfs };
  }
  return undefined;
}

/** Bytes `pid` read and wrote so far (/proc/<pid>/io), as one string; '' once it is gone. */
function io(pid: number): string {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    return (/rchar: (\d+)/.exec(text)?.[1] ?? '') + '/' + (/wchar: (\d+)/.exec(text)?.[1] ?? '');
  } catch {
    return '';
  }
}

/** Waits until `pid` moved no byte for `quietMs` (it is blocked). */
async function waitStalled(what: string, pid: number, quietMs = 1000): Promise<void> {
  let last = io(pid);
  let since = Date.now();
  await waitUntil(what, () => {
    const now = io(pid);
    if (now !== last) {
      last = now;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  });
}

function kill(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}

describe(
  'SSH: a stopped remote fails in time, a killed client leaves nothing behind',
  { skip: sshPrereqs.skip },
  () => {
    let sshd: Sshd;
    let local: BtrfsFs;
    let remote: BtrfsFs;
    let snaps: string;
    let pullSrc: string;
    const stores: Store[] = [];
    /** Processes a test stopped: continued and killed after it, whatever happened. */
    const stopped = new Set<number>();
    let restoreLogger: (() => void) | undefined;

    const localStore = (dir: string): BtrfsStore => {
      const s = new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
      stores.push(s);
      return s;
    };
    const sshStore = (dir: string, opts: SshStoreOptions): SshStore => {
      const s = new SshStore(parseLocation(`ssh://${sshd.alias}${dir}/`) as SshLocation, {
        home: sshd.home,
        agent: false,
        remoteCommand: sshd.remoteCommand,
        ...opts,
      });
      stores.push(s);
      return s;
    };
    const stop = (pid: number) => {
      stopped.add(pid);
      process.kill(pid, 'SIGSTOP');
    };

    before(async () => {
      const prev = setLogger({ warn: () => undefined, debug: () => undefined });
      restoreLogger = () => setLogger(prev);
      sshd = await startSshd();
      local = await createBtrfs({ size: 768 * MiB, label: 'stall local' });
      remote = await createBtrfs({ size: 768 * MiB, label: 'stall remote' });
      const vol = await subvolume(join(local.mnt, 'vol'));
      await makeTree(vol, 0, { bigMiB: 128, xattrs: false });
      snaps = join(local.mnt, 'snaps');
      await mkdir(snaps);
      await snapshot(vol, join(snaps, 'big0'));
      const rvol = await subvolume(join(remote.mnt, 'vol'));
      await makeTree(rvol, 0, { bigMiB: 128, xattrs: false });
      pullSrc = join(remote.mnt, 'pullsrc');
      await mkdir(pullSrc);
      await snapshot(rvol, join(pullSrc, 'big0'));
    });
    afterEach(() => {
      for (const pid of stopped) kill(pid, 'SIGCONT');
      stopped.clear();
    });
    after(async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      restoreLogger?.();
      await sshd?.stop();
      await remote?.cleanup();
      await local?.cleanup();
    });

    it(
      'push: a stopped remote buttersink fails the push after the 2 s idle limit, in one line',
      { timeout: 60_000 },
      async () => {
        const dir = join(remote.mnt, 'idle-push');
        await mkdir(dir);
        let found: { server: number; btrfs: number } | undefined;
        let stoppedAt = 0;
        const err: unknown = await sync(
          localStore(snaps),
          sshStore(dir, { mode: 'a', idleTimeoutMs: 2000 }),
          {
            onProgress: (_t, p) => {
              if (found || p.bytes === 0) return;
              found = serverWithBtrfs(`--mode a ${dir}/`, 'receive');
              if (found) {
                stop(found.server);
                stoppedAt = performance.now();
              }
            },
          },
        ).then(
          () => undefined,
          (e: unknown) => e,
        );
        const waited = performance.now() - stoppedAt;
        assert.ok(found, 'the remote server was stopped mid-push');
        assert.ok(err instanceof Error, 'the push failed');
        assert.match(
          err.message,
          /^big0: the remote buttersink at ssh:\/\/bstest read nothing for 2 s \(idle limit\)/,
        );
        assert.doesNotMatch(err.message, /\n/);
        assert.ok(
          waited >= 1900 && waited < 6000,
          `failed ${Math.round(waited)} ms after the stop`,
        );
        // Continued, the server finds its channel closed and ends with its btrfs receive.
        kill(found.server, 'SIGCONT');
        await waitUntil(
          'the remote server and its btrfs receive are gone',
          () => !running(found!.server) && !running(found!.btrfs),
        );
      },
    );

    it(
      'pull: a stopped remote buttersink fails the pull after the 2 s idle limit, in one line',
      { timeout: 60_000 },
      async () => {
        const into = join(local.mnt, 'idle-pull');
        await mkdir(into);
        let found: { server: number; btrfs: number } | undefined;
        let stoppedAt = 0;
        const err: unknown = await sync(
          sshStore(pullSrc, { mode: 'r', idleTimeoutMs: 2000 }),
          localStore(into),
          {
            onProgress: (_t, p) => {
              if (found || p.bytes === 0) return;
              found = serverWithBtrfs(`--mode r ${pullSrc}/`, 'send');
              if (found) {
                stop(found.server);
                stoppedAt = performance.now();
              }
            },
          },
        ).then(
          () => undefined,
          (e: unknown) => e,
        );
        const waited = performance.now() - stoppedAt;
        assert.ok(found, `the remote server was stopped mid-pull: ${String(err)}`);
        assert.ok(err instanceof Error, 'the pull failed');
        assert.match(
          err.message,
          /^big0: the remote buttersink at ssh:\/\/bstest sent nothing for 2 s \(idle limit\)/,
        );
        assert.doesNotMatch(err.message, /\n/);
        assert.ok(
          waited >= 1900 && waited < 6000,
          `failed ${Math.round(waited)} ms after the stop`,
        );
        kill(found.server, 'SIGCONT');
        await waitUntil(
          'the remote server and its btrfs send are gone',
          () => !running(found!.server) && !running(found!.btrfs),
        );
      },
    );

    it(
      'a host that stops answering SSH keepalives is dropped with a one-line error',
      { timeout: 60_000 },
      async () => {
        const before = new Set(sshd.sessionPids());
        const store = sshStore(pullSrc, {
          mode: 'r',
          idleTimeoutMs: 0,
          keepaliveInterval: 300,
          keepaliveCountMax: 2,
        });
        await store.view('source');
        const session = sshd.sessionPids().filter((p) => !before.has(p));
        assert.equal(session.length, 1, 'one sshd process serves this connection');
        stop(session[0]!);
        const started = performance.now();
        const err: unknown = await store.view('source').then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof Error, 'the request failed');
        assert.match(
          err.message,
          /^ssh:\/\/bstest: connection lost during the list request \(no answer to SSH keepalives for 0\.9 s \(keepalive limit\)\)/,
        );
        assert.doesNotMatch(err.message, /\n/);
        assert.ok(performance.now() - started < 10_000);
        kill(session[0], 'SIGCONT');
        await waitUntil(
          'the sshd session and its servers are gone',
          () => descendants(session[0]!).length === 0 && !running(session[0]!),
        );
      },
    );

    /**
     * Starts the CLI as a client, waits until the remote server of the transfer runs
     * `btrfs op`, stops that btrfs and waits until the server is blocked on it, kills
     * the client with SIGKILL, and waits until every process of the session is gone.
     */
    async function killClientWhileRemoteBtrfsStopped(
      args: string[],
      needle: string,
      op: 'send' | 'receive',
    ): Promise<void> {
      const before = new Set(sshd.sessionPids());
      const client = startCli(
        ['-e', '--remote-command', sshd.remoteCommand, ...args],
        'buttersink',
        {
          env: { HOME: sshd.home, SSH_AUTH_SOCK: '' },
        },
      );
      let found: { server: number; btrfs: number } | undefined;
      let session: number[] = [];
      let servers: number[] = [];
      try {
        await waitUntil(`the remote server runs btrfs ${op}`, () => {
          if (client.exitCode !== null)
            throw new Error(`the client ended early: ${String(client.exitCode)}`);
          found = serverWithBtrfs(needle, op);
          return found !== undefined;
        });
        stop(found!.btrfs);
        await waitStalled('the remote server is blocked on its stopped btrfs', found!.server);
        session = sshd.sessionPids().filter((p) => !before.has(p));
        // This client's sshd processes and the servers below them (other tests' stores may
        // still hold control sessions on the same directory).
        servers = session.flatMap(descendants).filter((p) => cmdline(p).includes('--server'));
        assert.ok(session.length > 0 && servers.includes(found!.server));
        kill(client.pid, 'SIGKILL');
        await client;
        // No SIGCONT: the server must kill its stopped child (SIGKILL ends a stopped process).
        const left = () => [...session, ...servers, found!.btrfs].filter(running);
        await waitUntil(
          'no process of the killed session is left on the remote',
          () => left().length === 0,
        ).catch((err: unknown) => {
          const what = left().map((p) => `${p} ${procState(p)} ${cmdline(p).slice(-60)}`);
          throw new Error(`${(err as Error).message}: ${what.join('; ')}`);
        });
      } finally {
        kill(client.pid, 'SIGKILL');
        for (const pid of [found?.btrfs, ...servers, ...session]) {
          kill(pid, 'SIGCONT');
          kill(pid, 'SIGKILL');
        }
      }
    }

    it(
      'push: a client killed while the remote btrfs receive is stopped leaves no remote process',
      { timeout: 90_000 },
      async () => {
        const dir = join(remote.mnt, 'killed-push');
        await mkdir(dir);
        await killClientWhileRemoteBtrfsStopped(
          [`${snaps}/`, `ssh://${sshd.alias}${dir}/`],
          `--mode a ${dir}/`,
          'receive',
        );
      },
    );

    it(
      'pull: a client killed while the remote btrfs send is stopped leaves no remote process',
      { timeout: 90_000 },
      async () => {
        const into = join(local.mnt, 'killed-pull');
        await mkdir(into);
        await killClientWhileRemoteBtrfsStopped(
          [`ssh://${sshd.alias}${pullSrc}/`, `${into}/`],
          `--mode r ${pullSrc}/`,
          'send',
        );
      },
    );
  },
);
