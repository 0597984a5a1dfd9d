// The no-follow helpers close what they open, also when they refuse.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NoFollowError, appendNoFollow, readNoFollow } from '../../../src/stores/no-follow.js';

/** What this process's open descriptors point at (Linux). */
async function openPaths(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const paths = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return paths;
}

describe('no-follow file helpers: descriptors', () => {
  it('a refused symlink keeps the ELOOP as its cause', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bs-nofollow-cause-'));
    try {
      const link = join(dir, 'snap.bs');
      await symlink('/etc/hostname', link);
      await assert.rejects(readNoFollow(link), (err: unknown) => {
        assert.ok(err instanceof NoFollowError);
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'ELOOP');
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leave no descriptor open after reading, appending, or refusing a FIFO or a directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bs-nofollow-fds-'));
    try {
      const file = join(dir, 'snap.bs');
      await writeFile(file, 'a\n');
      const fifo = join(dir, 'fifo.bs');
      execFileSync('mkfifo', [fifo]);
      const sub = join(dir, 'dir.bs');
      await mkdir(sub);
      for (let i = 0; i < 20; i++) {
        assert.equal((await readNoFollow(file)).slice(0, 2), 'a\n');
        await appendNoFollow(file, 'b\n');
        await assert.rejects(readNoFollow(fifo), NoFollowError);
        // O_WRONLY | O_NONBLOCK on a FIFO without reader: ENXIO, nothing opened.
        await assert.rejects(appendNoFollow(fifo, 'x'), { code: 'ENXIO' });
        await assert.rejects(readNoFollow(sub), NoFollowError);
      }
      assert.deepEqual(
        (await openPaths()).filter((p) => p.startsWith(dir)),
        [],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
