/**
 * One run at a time per destination (issue 10, "Locks"), against the real
 * things: loop-mounted btrfs, moto_server, OpenSSH sshd. Two runs started at
 * once into one destination: the one holding the lock is stopped (SIGSTOP)
 * the moment its lock appears, so the other meets it whatever the timing,
 * then let go. No fixed sleeps: everything waits for an event with a deadline.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { listSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { createSubvolume } from '../../src/btrfs/subvolume.js';
import { setLogger } from '../../src/log.js';
import type { Warning } from '../../src/log.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { LOCK_FILE_NAME, LockLostError, LockedError, parseHolder } from '../../src/stores/lock.js';
import type { LockHolder } from '../../src/stores/lock.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location, SshLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { PreflightError } from '../../src/errors.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli, startCli } from '../fixtures/cli.js';
import { MOTO_ENV, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const btrfsPrereqs = integrationPrereqs({ root: true, btrfs: true });
const MiB = 1024 * 1024;
const HOST = hostname();

/** Polls `fn` until it returns a value (not undefined), or fails after `ms`. */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A pid no process has now (a child that already exited). */
function deadPid(): number {
  const r = spawnSync('true');
  assert.ok(r.pid && r.pid > 0);
  return r.pid;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function lockedLine(store: string, pid: number, lock: string, expires = false): RegExp {
  return new RegExp(
    `^buttersink: ${escape(store)}: another buttersink run holds the lock \\(pid ${pid} on host ${escape(HOST)}, since (?:\\d{4}-\\d\\d-\\d\\d )?\\d\\d:\\d\\d:\\d\\d${expires ? ', expires (?:\\d{4}-\\d\\d-\\d\\d )?\\d\\d:\\d\\d:\\d\\d' : ''}\\); wait for it or remove ${escape(lock)} if it is dead\\n?$`,
  );
}

function btrfsStore(dir: string): BtrfsStore {
  return new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
}

function captureWarnings(): { warnings: Warning[]; restore: () => void } {
  const warnings: Warning[] = [];
  const prev = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  return { warnings, restore: () => setLogger(prev) };
}

/** Runs `a` and `b` (started together); stops whichever takes the lock first while `check` runs with the other's result. */
async function raceOfTwo(
  a: ReturnType<typeof startCli>,
  b: ReturnType<typeof startCli>,
  readHolder: () => Promise<LockHolder | undefined>,
): Promise<{
  holder: LockHolder;
  winner: { exitCode: number; all: string };
  loser: { exitCode: number; stderr: string };
}> {
  const holder = await waitFor('the first run to take the lock', readHolder);
  const [winner, loser] = holder.pid === a.pid ? [a, b] : [b, a];
  assert.ok(holder.pid === a.pid || holder.pid === b.pid, `lock held by pid ${holder.pid}`);
  // Stop the holder where it is: the other run now meets its lock, whatever the timing.
  process.kill(winner.pid!, 'SIGSTOP');
  let lost;
  try {
    lost = await loser;
  } finally {
    process.kill(winner.pid!, 'SIGCONT');
  }
  const won = await winner;
  return {
    holder,
    winner: { exitCode: won.exitCode ?? -1, all: String(won.all) },
    loser: { exitCode: lost.exitCode ?? -1, stderr: String(lost.stderr) },
  };
}

describe('locks: btrfs destination', { skip: btrfsPrereqs.skip }, () => {
  let A: BtrfsFs;
  let B: BtrfsFs;
  let snaps: string;
  const names = ['s0', 's1', 's2'];

  before(async () => {
    [A, B] = await Promise.all([createBtrfs({ size: 1 << 30 }), createBtrfs({ size: 1 << 30 })]);
    const live = await subvolume(join(A.mnt, 'live'));
    snaps = join(A.mnt, 'snaps');
    await mkdir(snaps);
    for (const [i, name] of names.entries()) {
      await makeTree(live, i, { bigMiB: 32 });
      await snapshot(live, join(snaps, name));
    }
  });
  after(async () => {
    await Promise.all([A?.cleanup(), B?.cleanup()]);
  });

  async function assertComplete(dst: string): Promise<void> {
    for (const name of names) {
      const s = await subvolumeShow(join(snaps, name));
      const d = await subvolumeShow(join(dst, name));
      assert.equal(d.readOnly, true);
      assert.equal(d.receivedUuid, s.uuid, `${name} received UUID`);
      assert.equal(await treeDigest(join(dst, name)), await treeDigest(join(snaps, name)));
    }
    const partials = (await listSubvolumes(dst)).filter((s) => s.path.endsWith('.part'));
    assert.deepEqual(partials, [], 'no partial left');
    assert.equal(existsSync(join(dst, LOCK_FILE_NAME)), false, 'lock released');
  }

  it('two syncs at once into one destination: one proceeds, the other fails naming it; a rerun converges', async () => {
    const dst = join(B.mnt, 'race');
    await mkdir(dst);
    const lock = join(dst, LOCK_FILE_NAME);
    const args = ['-q', '-e', `${snaps}/`, `${dst}/`];
    const r = await raceOfTwo(startCli(args), startCli(args), async () => {
      const text = await readFile(lock, 'utf8').catch(() => undefined);
      return text === undefined ? undefined : parseHolder(text);
    });
    assert.equal(r.loser.exitCode, 1, r.loser.stderr);
    assert.match(r.loser.stderr, lockedLine(`${dst}/`, r.holder.pid, lock));
    assert.equal(r.holder.host, HOST);
    assert.equal(r.winner.exitCode, 0, r.winner.all);
    await assertComplete(dst);

    const rerun = await runCli([`${snaps}/`, `${dst}/`]);
    assert.equal(rerun.exitCode, 0, rerun.stderr);
    assert.match(rerun.stdout, /nothing to transfer/);
    assert.equal(existsSync(lock), false);
  });

  it('a stale lock (this host, pid gone) is taken over, with a warning, and released at the end', async () => {
    const dst = join(B.mnt, 'stale');
    await mkdir(dst);
    const lock = join(dst, LOCK_FILE_NAME);
    const pid = deadPid();
    await writeFile(
      lock,
      JSON.stringify({ pid, host: HOST, started: new Date().toISOString(), command: 'old' }),
    );
    const r = await runCli(['-q', '-e', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`taking over the lock of a run that is gone \\(pid ${pid} on host `),
    );
    await assertComplete(dst);
  });

  it('while another run holds the lock, nothing deletes partials: not a sync, not -d, not the library', async () => {
    const dst = join(B.mnt, 'held');
    await mkdir(dst);
    const lock = join(dst, LOCK_FILE_NAME);
    const partial = join(dst, 's0.part');
    await createSubvolume(partial);
    // "Another run": this test process, alive on this host.
    await writeFile(
      lock,
      JSON.stringify({ pid: process.pid, host: HOST, started: new Date().toISOString() }),
    );
    const clean = await runCli(['-d', `${dst}/`]);
    assert.equal(clean.exitCode, 1, clean.stderr);
    assert.match(clean.stderr, lockedLine(`${dst}/`, process.pid, lock));
    assert.equal(existsSync(partial), true, '-d left the live run’s partial');

    const run = await runCli(['-q', '-e', `${snaps}/`, `${dst}/`]);
    assert.equal(run.exitCode, 1, run.stderr);
    assert.match(run.stderr, lockedLine(`${dst}/`, process.pid, lock));
    assert.equal(existsSync(partial), true, 'a sync left the live run’s partial');

    const store = btrfsStore(dst);
    await assert.rejects(store.deletePartials(await store.listPartials()), LockedError);
    assert.equal(existsSync(partial), true, 'deletePartials left the live run’s partial');

    await rm(lock);
    const after = await runCli(['-d', `${dst}/`]);
    assert.equal(after.exitCode, 0, after.stderr);
    assert.equal(existsSync(partial), false, 'with the lock free, -d deletes the partial');
    assert.equal(existsSync(lock), false);
  });

  it('a dry run neither takes nor needs the lock', async () => {
    const dst = join(B.mnt, 'dry');
    await mkdir(dst);
    const lock = join(dst, LOCK_FILE_NAME);
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'nas', started: '2024-01-05T12:01:03Z' }));
    const r = await runCli(['-n', '-e', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    const real = await runCli(['-e', `${snaps}/`, `${dst}/`]);
    assert.equal(real.exitCode, 1);
    assert.match(
      real.stderr,
      /holds the lock \(pid 1 on host nas, since 2024-01-05 \d\d:\d\d:\d\d\)/,
    );
  });
});

const sshPrereqs = integrationPrereqs({ root: true, btrfs: true, sshd: true });

describe(
  'locks: SSH destination (the server locks the served directory)',
  {
    skip: sshPrereqs.skip,
  },
  () => {
    let sshd: Sshd;
    let fs: BtrfsFs;
    let remote: BtrfsFs;
    let snaps: string;
    let backup: string;
    const stores: SshStore[] = [];

    before(async () => {
      sshd = await startSshd();
      [fs, remote] = await Promise.all([
        createBtrfs({ size: 512 * MiB }),
        createBtrfs({ size: 512 * MiB }),
      ]);
      const vol = await subvolume(join(fs.mnt, 'vol'));
      snaps = join(fs.mnt, 'snaps');
      backup = join(remote.mnt, 'backup');
      await Promise.all([mkdir(snaps), mkdir(backup)]);
      await makeTree(vol, 0);
      await snapshot(vol, join(snaps, 's0'));
    });
    after(async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      await sshd?.stop();
      await Promise.all([fs?.cleanup(), remote?.cleanup()]);
    });

    const sshStore = (mode: 'a' | 'w') => {
      const s = new SshStore(parseLocation(`ssh://${sshd.alias}${backup}/`) as SshLocation, {
        home: sshd.home,
        agent: false,
        remoteCommand: sshd.remoteCommand,
        mode,
      });
      stores.push(s);
      return s;
    };

    it('a push or a partial cleanup into a locked directory fails naming the holder; nothing changes', async () => {
      const lock = join(backup, LOCK_FILE_NAME);
      const partial = join(backup, 'old.part');
      await createSubvolume(partial);
      await writeFile(
        lock,
        JSON.stringify({ pid: process.pid, host: HOST, started: new Date().toISOString() }),
      );
      await assert.rejects(
        sync(btrfsStore(snaps), sshStore('a')),
        new RegExp(
          `another buttersink run holds the lock \\(pid ${process.pid} on host ${escape(HOST)}, since `,
        ),
      );
      const dest = sshStore('w');
      await assert.rejects(dest.deletePartials(await dest.listPartials()), /holds the lock/);
      assert.equal(existsSync(partial), true);
      assert.equal(existsSync(join(backup, 's0')), false);

      await rm(lock);
      const report = await sync(btrfsStore(snaps), sshStore('w'));
      assert.equal(report.transferred.length, 1);
      await dest.deletePartials(await dest.listPartials());
      assert.equal(existsSync(partial), false);
      assert.equal(existsSync(lock), false, 'the server released its lock');
    });

    it('a push holds the remote lock for the whole run; its own receives work under it, a local run fails naming it', async () => {
      const lock = join(backup, LOCK_FILE_NAME);
      spawnSync('btrfs', ['subvolume', 'delete', join(backup, 's0')]);
      let seen: { holder: LockHolder | undefined; local: unknown } | undefined;
      const checking: Promise<void>[] = [];
      const report = await sync(btrfsStore(snaps), sshStore('a'), {
        onProgress: () => {
          if (checking.length > 0) return;
          checking.push(
            (async () => {
              const holder = parseHolder(await readFile(lock, 'utf8'));
              const local = await btrfsStore(backup)
                .lock()
                .then(
                  (l) => l.release().then(() => 'taken'),
                  (e: unknown) => e,
                );
              seen = { holder, local };
            })(),
          );
        },
      });
      await Promise.all(checking);
      assert.equal(report.transferred.length, 1, 'the push received under its own run lock');
      assert.ok(seen, 'checked while the push ran');
      const { holder, local } = seen;
      assert.ok(holder, 'the lock file held a holder record during the push');
      assert.notEqual(holder.pid, process.pid, 'held by the remote server process');
      assert.match(holder.command ?? '', /^buttersink --server for: /);
      assert.ok(local instanceof LockedError, `a local run was refused: ${String(local)}`);
      assert.match(
        local.message,
        new RegExp(`another buttersink run holds the lock \\(pid ${holder.pid} on host `),
      );
      assert.equal(existsSync(lock), false, 'released at the end of the run');
    });

    it('while one run holds the remote lock, another SSH run fails naming it and sends nothing', async () => {
      const lock = join(backup, LOCK_FILE_NAME);
      spawnSync('btrfs', ['subvolume', 'delete', join(backup, 's0')]);
      const held = await sshStore('a').lock();
      try {
        const holder = parseHolder(await readFile(lock, 'utf8'));
        assert.ok(holder);
        const err: unknown = await sync(btrfsStore(snaps), sshStore('a')).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof LockedError, `refused: ${String(err)}`);
        assert.match(
          err.message,
          new RegExp(`another buttersink run holds the lock \\(pid ${holder.pid} on host `),
        );
        assert.equal(existsSync(join(backup, 's0')), false, 'nothing was received');
      } finally {
        await held.release();
      }
      assert.equal(existsSync(lock), false, 'released');
    });

    it('a lock whose client connection dropped is given back by the server; the next run proceeds', async () => {
      const lock = join(backup, LOCK_FILE_NAME);
      const first = sshStore('a');
      await first.lock();
      const holder = parseHolder(await readFile(lock, 'utf8'));
      assert.ok(holder);
      await first.disconnect();
      await waitFor('the server to give the lock back', async () =>
        existsSync(lock) ? undefined : true,
      );
      const again = await sshStore('a').lock();
      await again.release();
      assert.equal(existsSync(lock), false);
    });

    it('a name taken at the remote destination is refused before anything is sent', async () => {
      spawnSync('btrfs', ['subvolume', 'delete', join(backup, 's0')]);
      await mkdir(join(backup, 's0'));
      try {
        const err: unknown = await sync(btrfsStore(snaps), sshStore('a')).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof PreflightError, `refused by the preflight: ${String(err)}`);
        assert.match(
          err.message,
          new RegExp(
            `^refusing to start: ssh://${escape(sshd.alias)}: \\S*/s0 already exists and is not snapshot `,
          ),
        );
        const parts = (await listSubvolumes(backup)).filter((v) => v.path.endsWith('.part'));
        assert.deepEqual(parts, [], 'nothing was received');
      } finally {
        await rm(join(backup, 's0'), { recursive: true });
      }
    });
  },
);

const s3Prereqs = integrationPrereqs({ root: true, btrfs: true, moto: true });

describe('locks: S3 prefix (moto_server)', { skip: s3Prereqs.skip }, () => {
  let moto: Moto;
  let client: S3Client;
  let restoreEnv: () => void;
  let fs: BtrfsFs;
  let snaps: string;
  const stores: S3Store[] = [];

  const s3Store = (uri: string): S3Store => {
    const s = new S3Store(parseLocation(uri) as S3Location, {
      endpoint: moto.endpoint,
      partSize: 5 * MiB,
      jobs: 2,
    });
    stores.push(s);
    return s;
  };
  const getLock = async (bucket: string, key: string): Promise<LockHolder | undefined> => {
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return parseHolder((await res.Body?.transformToString()) ?? '');
    } catch {
      return undefined;
    }
  };
  const putLock = (bucket: string, key: string, holder: object) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(holder) }));
  const keys = async (bucket: string): Promise<string[]> =>
    ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [])
      .map((o) => o.Key!)
      .sort();

  before(async () => {
    restoreEnv = useMotoEnv();
    moto = await startMoto();
    client = createS3Client({ endpoint: moto.endpoint });
    for (const b of ['race', 'expired', 'lease']) {
      await client.send(new CreateBucketCommand({ Bucket: `lock-${b}` }));
    }
    fs = await createBtrfs({ size: 512 * MiB });
    const vol = await subvolume(join(fs.mnt, 'vol'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(snaps);
    for (let i = 0; i < 2; i++) {
      await makeTree(vol, i, { bigMiB: 12 });
      await snapshot(vol, join(snaps, `s${i}`));
    }
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    client?.destroy();
    await moto?.stop();
    restoreEnv?.();
    await fs?.cleanup();
  });

  it('two uploads at once to one prefix: one fails clearly, the other completes', async () => {
    const env = { ...process.env, ...MOTO_ENV } as Record<string, string>;
    const args = ['-q', '-e', '--endpoint-url', moto.endpoint, '--part-size', '5', `${snaps}/`];
    const dst = 's3://lock-race/backups/';
    const r = await raceOfTwo(
      startCli([...args, dst], 'buttersink', { env }),
      startCli([...args, dst], 'buttersink', { env }),
      () => getLock('lock-race', 'backups/.buttersink-lock'),
    );
    assert.equal(r.loser.exitCode, 1, r.loser.stderr);
    assert.match(
      r.loser.stderr,
      lockedLine(dst, r.holder.pid, 's3://lock-race/backups/.buttersink-lock', true),
    );
    assert.equal(r.winner.exitCode, 0, r.winner.all);
    assert.doesNotMatch(r.winner.all, /resumed|warning/i);
    const stored = await keys('lock-race');
    assert.equal(stored.filter((k) => /_(None|[-0-9a-f]{36})$/.test(k)).length, 2, stored.join());
    assert.ok(!stored.includes('backups/.buttersink-lock'), 'lock released');
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: 'lock-race' }));
    assert.equal(open.Uploads?.length ?? 0, 0, 'no upload left open');

    const rerun = await runCli([...args, dst], 'buttersink', { env });
    assert.equal(rerun.exitCode, 0, rerun.stderr);
    assert.match(rerun.stdout, /nothing to transfer/);
  });

  it('an expired lock is taken over; a live one is not; the listing ignores the lock key silently', async () => {
    const uri = 's3://lock-expired/p/';
    const key = 'p/.buttersink-lock';
    const started = new Date(Date.now() - 2 * 3600_000).toISOString();
    await putLock('lock-expired', key, {
      pid: 4242,
      host: 'nas',
      started,
      expires: new Date(Date.now() + 600_000).toISOString(),
    });
    const { warnings, restore } = captureWarnings();
    try {
      await assert.rejects(sync(btrfsStore(snaps), s3Store(uri)), (err: unknown) => {
        assert.ok(err instanceof LockedError);
        assert.match(
          err.message,
          /\(pid 4242 on host nas, since .*, expires (?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\)/,
        );
        return true;
      });
      assert.equal((await keys('lock-expired')).length, 1, 'nothing written');

      await putLock('lock-expired', key, {
        pid: 4242,
        host: 'nas',
        started,
        expires: new Date(Date.now() - 60_000).toISOString(),
      });
      const store = s3Store(uri);
      const report = await sync(btrfsStore(snaps), store);
      assert.equal(report.transferred.length, 2);
      assert.ok(warnings.some((w) => w.code === 'STALE_LOCK' && /expired/.test(w.message)));
      assert.ok(!(await keys('lock-expired')).includes(key), 'released after the run');

      // Listing with a lock present: no warning about an unknown key.
      const held = await store.lock();
      const view = await s3Store(uri).view('dest');
      assert.equal(view.volumes.length, 2);
      await held.release();
      assert.deepEqual(
        warnings.filter((w) => w.code !== 'STALE_LOCK'),
        [],
        'no other warnings (S3_UNKNOWN_KEY)',
      );
    } finally {
      restore();
    }
  });

  it('of runs taking one lock at once exactly one wins; a held lock is refreshed, and a takeover stops its holder', async () => {
    const uri = 's3://lock-lease/x/';
    const key = 'x/.buttersink-lock';
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => s3Store(uri).lock({ ttlMs: 3000, refreshMs: 300 })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof LockedError, String(r.reason));
    }
    const lock = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<S3Store['lock']>>>).value;
    const first = (await getLock('lock-lease', key))!.expires!;
    await waitFor('a refresh', async () => {
      const now = await getLock('lock-lease', key);
      return now && now.expires! > first ? true : undefined;
    });
    assert.equal(lock.signal.aborted, false);
    // Someone takes it over (as after an expiry): the holder notices at its next refresh.
    await putLock('lock-lease', key, {
      pid: 1,
      host: 'other',
      started: new Date().toISOString(),
      expires: new Date(Date.now() + 3600_000).toISOString(),
    });
    await waitFor('the holder to notice', async () => (lock.signal.aborted ? true : undefined));
    assert.ok(lock.signal.reason instanceof LockLostError);
    assert.match(String(lock.signal.reason.message), /lost the lock/);
    await lock.release();
    assert.equal((await getLock('lock-lease', key))?.host, 'other', 'another run’s lock is left');
  });
});
