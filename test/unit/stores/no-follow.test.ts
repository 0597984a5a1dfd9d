import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NoFollowError, appendNoFollow, readNoFollow } from '../../../src/stores/no-follow.js';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bs-nofollow-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('no-follow file helpers', () => {
  it('reads and appends regular files; a new file gets the mode asked for', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'snap.bs');
      await assert.rejects(readNoFollow(file), { code: 'ENOENT' });
      await appendNoFollow(file, 'a\n');
      await appendNoFollow(file, 'b\n');
      assert.equal(await readNoFollow(file), 'a\nb\n');
      assert.equal((await stat(file)).mode & 0o777, 0o644 & ~process.umask());
      const other = join(dir, 'other.bs');
      await appendNoFollow(other, 'x', 0o600);
      assert.equal((await stat(other)).mode & 0o777, 0o600);
    });
  });

  it('refuses to read through a symlink', async () => {
    await withTempDir(async (dir) => {
      const secret = join(dir, 'secret');
      await writeFile(secret, 'root only\n');
      const link = join(dir, 'snap.bs');
      await symlink(secret, link);
      await assert.rejects(
        readNoFollow(link),
        (err: Error) =>
          err instanceof NoFollowError &&
          err.message === `${link}: is a symbolic link; not following it`,
      );
    });
  });

  it('refuses to append through a symlink, creating nothing at its target', async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, 'target');
      await writeFile(target, 'keep\n');
      const link = join(dir, 'snap.bs');
      await symlink(target, link);
      await assert.rejects(appendNoFollow(link, 'x\n'), NoFollowError);
      assert.equal(await readFile(target, 'utf8'), 'keep\n');
      const dangling = join(dir, 'dangling.bs');
      const nowhere = join(dir, 'nowhere');
      await symlink(nowhere, dangling);
      await assert.rejects(appendNoFollow(dangling, 'x\n'), NoFollowError);
      await assert.rejects(lstat(nowhere), { code: 'ENOENT' });
    });
  });

  it('refuses a FIFO without blocking', async () => {
    await withTempDir(async (dir) => {
      const fifo = join(dir, 'snap.bs');
      execFileSync('mkfifo', [fifo]);
      await assert.rejects(readNoFollow(fifo), NoFollowError);
    });
  });
});
