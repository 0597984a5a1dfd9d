import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { setLogger } from '../../../src/log.js';
import type { Warning } from '../../../src/log.js';
import {
  LOCK_FILE_NAME,
  LockedError,
  acquireFileLock,
  joinFileLock,
  formatLockTime,
  holderState,
  newHolder,
  parseHolder,
} from '../../../src/stores/lock.js';
import type { LockHolder } from '../../../src/stores/lock.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bs-lock-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function captureWarnings(): { warnings: Warning[]; restore: () => void } {
  const warnings: Warning[] = [];
  const prev = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  return { warnings, restore: () => setLogger(prev) };
}

/** A pid that no process has now (a child that already exited). */
function deadPid(): number {
  const r = spawnSync('true');
  assert.ok(r.pid && r.pid > 0);
  return r.pid;
}

function lockText(h: Partial<LockHolder>): string {
  return JSON.stringify({ host: hostname(), started: '2024-01-05T12:01:03.000Z', ...h }) + '\n';
}

const take = (dir: string, extra: object = {}) =>
  acquireFileLock({ dir, label: `${dir}/`, command: 'buttersink /a/ /b/', ...extra });

describe('directory lock file', () => {
  it('creates the lock with the holder, removes it on release (idempotent)', async () => {
    await withTempDir(async (dir) => {
      const lock = await take(dir);
      const path = join(dir, LOCK_FILE_NAME);
      assert.equal(lock.where, path);
      const h = parseHolder(await readFile(path, 'utf8'));
      assert.equal(h?.pid, process.pid);
      assert.equal(h?.host, hostname());
      assert.equal(h?.command, 'buttersink /a/ /b/');
      assert.ok(!Number.isNaN(Date.parse(h!.started)));
      assert.equal((await lstat(path)).mode & 0o777, 0o644 & ~process.umask());
      await lock.release();
      await lock.release();
      assert.deepEqual(await readdir(dir), [], 'no lock, no temporary files left');
    });
  });

  it('a second taker fails at once with one line naming pid, host and start', async () => {
    await withTempDir(async (dir) => {
      const lock = await take(dir);
      const err = await take(dir).then(
        () => assert.fail('took a held lock'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof LockedError);
      assert.equal(err.code, 'LOCKED');
      assert.equal(err.holder?.pid, process.pid);
      const path = join(dir, LOCK_FILE_NAME);
      assert.equal(
        err.message,
        `${dir}/: another buttersink run holds the lock (pid ${process.pid} on host ${hostname()}, since ${formatLockTime(lock.holder.started)}); wait for it or remove ${path} if it is dead`,
      );
      assert.match(err.message, /since (?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\)/);
      assert.equal(
        (await readFile(path, 'utf8')).includes(lock.holder.token!),
        true,
        'the holder’s lock is untouched',
      );
      await lock.release();
      const again = await take(dir);
      await again.release();
    });
  });

  it('of many runs starting at once, exactly one gets the lock', async () => {
    await withTempDir(async (dir) => {
      const results = await Promise.allSettled(Array.from({ length: 25 }, () => take(dir)));
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof LockedError, String(r.reason));
      }
      await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof take>>>).value.release();
      assert.deepEqual(await readdir(dir), []);
    });
  });

  it('takes over a stale lock (same host, pid gone) with a warning naming the dead run', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, LOCK_FILE_NAME);
      const pid = deadPid();
      await writeFile(path, lockText({ pid }));
      const { warnings, restore } = captureWarnings();
      try {
        const lock = await take(dir);
        assert.equal(parseHolder(await readFile(path, 'utf8'))?.token, lock.holder.token);
        await lock.release();
      } finally {
        restore();
      }
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.code, 'STALE_LOCK');
      assert.match(warnings[0]!.message, new RegExp(`pid ${pid} on host`));
      assert.deepEqual(await readdir(dir), []);
    });
  });

  it('of many runs finding one stale lock, exactly one takes it over', async () => {
    for (let round = 0; round < 5; round++) {
      await withTempDir(async (dir) => {
        await writeFile(join(dir, LOCK_FILE_NAME), lockText({ pid: deadPid() }));
        const { restore } = captureWarnings();
        let results;
        try {
          results = await Promise.allSettled(Array.from({ length: 20 }, () => take(dir)));
        } finally {
          restore();
        }
        const won = results.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1, `round ${round}: ${won.length} runs hold the lock`);
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(r.reason instanceof LockedError, String(r.reason));
        }
        await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof take>>>).value.release();
        assert.deepEqual(await readdir(dir), [], 'no claim markers or temporary files left');
      });
    }
  });

  it('a claim left by a run that died while taking over does not block forever', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, LOCK_FILE_NAME);
      await writeFile(path, lockText({ pid: deadPid() }));
      // Make the claim marker a dead run would have left: a racing taker creates it first.
      const { restore } = captureWarnings();
      try {
        const { createHash } = await import('node:crypto');
        const st = await lstat(path);
        const text = await readFile(path, 'utf8');
        const digest = createHash('sha256').update(`${st.ino}\n${text}`).digest('hex');
        await writeFile(`${path}.takeover-${digest.slice(0, 16)}`, lockText({ pid: deadPid() }));
        const lock = await take(dir);
        await lock.release();
      } finally {
        restore();
      }
      assert.deepEqual(await readdir(dir), []);
    });
  });

  it('a pid now used by another process, or a lock from before the last boot, is stale', async () => {
    const me = newHolder();
    assert.equal(holderState(me), 'live');
    assert.equal(holderState({ ...me, pidStart: '1' }), 'dead', 'same pid, other start time');
    assert.equal(holderState({ ...me, boot: 'another-boot' }), 'dead');
    assert.equal(holderState({ ...me, pid: deadPid() }), 'dead');
    assert.equal(holderState({ ...me, pid: deadPid(), pidns: 'pid:[1]' }), 'unknown');
    assert.equal(holderState({ ...me, pid: deadPid(), host: `not-${hostname()}` }), 'unknown');
    assert.equal(holderState({ pid: process.pid, host: hostname(), started: '' }), 'live');
  });

  it('a lock of another host is never taken over', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, LOCK_FILE_NAME), lockText({ pid: deadPid(), host: 'nas' }));
      await assert.rejects(take(dir), (err: unknown) => {
        assert.ok(err instanceof LockedError);
        assert.match(
          err.message,
          /another buttersink run holds the lock \(pid \d+ on host nas, since /,
        );
        return true;
      });
    });
  });

  it('refuses a lock it cannot read, and a symlink planted at the lock name', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, LOCK_FILE_NAME);
      await writeFile(path, 'garbage');
      await assert.rejects(take(dir), /exists but is not a readable buttersink lock/);
      await rm(path);
      const target = join(dir, 'target');
      await symlink(target, path);
      await assert.rejects(take(dir), /is a symbolic link, not a buttersink lock/);
      assert.equal(existsSync(target), false, 'nothing created through the link');
      assert.deepEqual((await readdir(dir)).sort(), [LOCK_FILE_NAME]);
    });
  });

  it('is removed when the process ends with process.exit (a second Ctrl-C)', async () => {
    await withTempDir(async (dir) => {
      const script = join(dir, 'hold.mts');
      await writeFile(
        script,
        `import { acquireFileLock } from ${JSON.stringify(join(repo, 'src/stores/lock.ts'))};
await acquireFileLock({ dir: ${JSON.stringify(dir)}, label: 'x/' });
process.exit(130);
`,
      );
      const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repo });
      assert.equal(r.status, 130, String(r.stderr));
      assert.deepEqual(await readdir(dir), ['hold.mts']);
    });
  });

  it('parses holders and formats lock times', () => {
    assert.equal(parseHolder('{"pid":0,"host":"h","started":"x"}'), undefined);
    assert.equal(parseHolder('{"pid":1,"host":"","started":"x"}'), undefined);
    assert.equal(parseHolder('[]'), undefined);
    assert.deepEqual(parseHolder('{"pid":7,"host":"h","started":"s","expires":"e","x":1}'), {
      pid: 7,
      host: 'h',
      started: 's',
      expires: 'e',
    });
    const now = new Date(2024, 0, 5, 18, 0, 0);
    assert.equal(formatLockTime(new Date(2024, 0, 5, 12, 1, 3).toISOString(), now), '12:01:03');
    assert.equal(
      formatLockTime(new Date(2024, 0, 4, 9, 5, 7).toISOString(), now),
      '2024-01-04 09:05:07',
    );
  });
});

describe("joining a run lock (the SSH server working under its client run's lock)", () => {
  it('joins only a held, live lock with the same token; its release leaves the lock alone', async () => {
    await withTempDir(async (dir) => {
      const label = `${dir}/`;
      await assert.rejects(
        joinFileLock({ dir, label, token: 'ab'.repeat(8) }),
        (err: unknown) => err instanceof LockedError && /no longer held/.test(err.message),
        'no lock: nothing to join',
      );
      const held = await acquireFileLock({ dir, label });
      await assert.rejects(
        joinFileLock({ dir, label, token: 'ab'.repeat(8) }),
        (err: unknown) =>
          err instanceof LockedError &&
          new RegExp(`another buttersink run holds the lock \\(pid ${process.pid} `).test(
            err.message,
          ),
        'a forged token joins nothing and names the holder',
      );
      const joined = await joinFileLock({ dir, label, token: held.holder.token! });
      assert.equal(joined.holder.pid, process.pid);
      await joined.release();
      assert.ok(
        existsSync(join(dir, LOCK_FILE_NAME)),
        'a joined lock is not removed by its release',
      );
      await held.release();
      await assert.rejects(
        joinFileLock({ dir, label, token: held.holder.token! }),
        /no longer held/,
        'a released lock cannot be joined',
      );
    });
  });
});
