import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { buttersinkMain } from '../../src/cli.js';
import { UsageError } from '../../src/errors.js';
import { consoleLogger } from '../../src/log.js';

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bs-log-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('--logfile', () => {
  it('creates a new log file with mode 0600 and appends to it', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'bs.log');
      const logger = consoleLogger({ logfile: file, quiet: true });
      logger.debug('hello', { n: 1 });
      logger.warn({ code: 'X', message: 'careful' });
      logger.close?.();
      logger.close?.();
      logger.debug('after close');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
      assert.equal(lines.length, 2);
      assert.match(lines[0]!, /^\S+Z DEBUG hello \{"n":1\}$/);
      assert.match(lines[1]!, /^\S+Z WARN X careful$/);
    });
  });

  it('keeps the mode of an existing log file and appends', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'bs.log');
      await writeFile(file, 'old\n');
      await chmod(file, 0o640);
      const logger = consoleLogger({ logfile: file, quiet: true });
      logger.debug('new');
      logger.close?.();
      assert.equal((await stat(file)).mode & 0o777, 0o640);
      assert.match(await readFile(file, 'utf8'), /^old\n\S+ DEBUG new\n$/);
    });
  });

  it('refuses a symlink with a one-line UsageError, writing nothing through it', async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, 'target');
      await writeFile(target, '');
      const link = join(dir, 'bs.log');
      await symlink(target, link);
      assert.throws(
        () => consoleLogger({ logfile: link }),
        (err: Error) =>
          err instanceof UsageError &&
          err.message === `--logfile ${link}: is a symbolic link; refusing to follow it`,
      );
      const dangling = join(dir, 'dangling.log');
      await symlink(join(dir, 'nowhere'), dangling);
      assert.throws(() => consoleLogger({ logfile: dangling }), UsageError);
      await assert.rejects(stat(join(dir, 'nowhere')), { code: 'ENOENT' });

      const io = { stdout: new PassThrough(), stderr: new PassThrough() };
      let stderr = '';
      io.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await buttersinkMain(['--logfile', link, join(dir, 'dst') + '/'], io);
      assert.equal(code, 2);
      assert.equal(
        stderr,
        `buttersink: --logfile ${link}: is a symbolic link; refusing to follow it\n`,
      );
      assert.equal(await readFile(target, 'utf8'), '');
    });
  });
});
