// resolveInside at its edges: a regular file as the last component, a root
// given through a symlink, and filesystem errors other than ENOENT.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ServerRefusal } from '../../../src/wire/protocol.js';
import { isInside, resolveInside } from '../../../src/server/safe-path.js';

describe('resolveInside edges', () => {
  let base: string;
  let root: string;
  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'bs-safe-edges-')));
    root = join(base, 'root');
    await mkdir(join(root, 'a'), { recursive: true });
    await writeFile(join(root, 'a', 'snap.bs'), 'x');
    await symlink('/etc', join(root, 'a', 'lnk'));
    await symlink(root, join(base, 'root-link'));
  });
  after(async () => rm(base, { recursive: true, force: true }));

  it('a regular file may be the last component', async () => {
    for (const mustExist of [true, false]) {
      assert.equal(await resolveInside(root, 'a/snap.bs', { mustExist }), join(root, 'a/snap.bs'));
    }
    assert.equal(await resolveInside(root, 'a', { mustExist: true }), join(root, 'a'));
  });

  it('a new path below an existing one resolves without existing', async () => {
    assert.equal(await resolveInside(root, 'new', { mustExist: false }), join(root, 'new'));
    await assert.rejects(resolveInside(root, 'a/new', { mustExist: true }), (err: unknown) => {
      assert.ok(err instanceof ServerRefusal);
      assert.equal(err.wireCode, 'NOT_FOUND');
      return true;
    });
  });

  it('refuses what exists but does not really lie below the root (root given through a symlink)', async () => {
    await assert.rejects(
      resolveInside(join(base, 'root-link'), 'a', { mustExist: true }),
      (err: unknown) => {
        assert.ok(err instanceof ServerRefusal);
        assert.equal(err.wireCode, 'PATH');
        assert.match(err.message, /outside the served directory/);
        return true;
      },
    );
  });

  it('names the component that is a symlink or not a directory, deep in the path', async () => {
    await assert.rejects(resolveInside(root, 'a/lnk/x', { mustExist: false }), (err: unknown) => {
      assert.ok(err instanceof ServerRefusal);
      assert.match(err.message, /: a\/lnk is a symlink$/);
      return true;
    });
    await assert.rejects(
      resolveInside(root, 'a/snap.bs/x', { mustExist: false }),
      (err: unknown) => {
        assert.ok(err instanceof ServerRefusal);
        assert.match(err.message, /: a\/snap\.bs is not a directory$/);
        return true;
      },
    );
  });

  it('reports filesystem errors other than ENOENT as they are, not as a missing path', async () => {
    const fileRoot = join(root, 'a', 'snap.bs');
    for (const mustExist of [true, false]) {
      await assert.rejects(resolveInside(fileRoot, 'x', { mustExist }), { code: 'ENOTDIR' });
    }
  });

  it('isInside: a sibling and the filesystem root are outside, a deeper path inside', () => {
    assert.equal(isInside('/a/b', '/a/c'), false);
    assert.equal(isInside('/a/b', '/'), false);
    assert.equal(isInside('/a/b', '/a/b/c/d'), true);
  });
});
