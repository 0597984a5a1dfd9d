import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ServerRefusal } from '../../../src/wire/protocol.js';
import { isInside, resolveInside } from '../../../src/server/safe-path.js';

describe('resolveInside', () => {
  let root: string;
  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'bs-safe-')));
    await mkdir(join(root, 'a', 'b'), { recursive: true });
    await writeFile(join(root, 'file'), 'x');
    await symlink('/etc', join(root, 'out'));
    await symlink('a', join(root, 'in'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  const refused = (p: Promise<unknown>, code: string, re: RegExp) =>
    assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof ServerRefusal);
      assert.equal(err.wireCode, code);
      assert.match(err.message, re);
      return true;
    });

  it('resolves existing and new paths below the root', async () => {
    assert.equal(await resolveInside(root, 'a/b', { mustExist: true }), join(root, 'a/b'));
    assert.equal(
      await resolveInside(root, 'a/new/deeper', { mustExist: false }),
      join(root, 'a/new/deeper'),
    );
  });

  it('refuses symlinks (even ones pointing inside), non-directories and missing paths', async () => {
    await refused(
      resolveInside(root, 'out/passwd', { mustExist: false }),
      'PATH',
      /out is a symlink/,
    );
    await refused(resolveInside(root, 'in/b', { mustExist: true }), 'PATH', /in is a symlink/);
    await refused(resolveInside(root, 'out', { mustExist: true }), 'PATH', /symlink/);
    await refused(resolveInside(root, 'file/x', { mustExist: false }), 'PATH', /not a directory/);
    await refused(
      resolveInside(root, 'nope', { mustExist: true }),
      'NOT_FOUND',
      /no such snapshot/,
    );
    await refused(resolveInside(root, '../x', { mustExist: false }), 'PATH', /leave/);
  });

  it('isInside compares real paths by component', () => {
    assert.equal(isInside('/a/b', '/a/b'), true);
    assert.equal(isInside('/a/b', '/a/b/c'), true);
    assert.equal(isInside('/a/b', '/a/bc'), false);
    assert.equal(isInside('/a/b', '/a'), false);
  });
});
