// A name that only starts with `..` (`..c`, `...`) is an ordinary name inside
// the served directory; only `..` itself climbs out.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isInside, resolveInside } from '../../../src/server/safe-path.js';

describe('isInside with names starting with ..', () => {
  it('a child named ..c or ... is inside; the parent and its other children are not', () => {
    assert.equal(isInside('/a/b', '/a/b/..c'), true);
    assert.equal(isInside('/a/b', '/a/b/...'), true);
    assert.equal(isInside('/a/b', '/a/b/..c/d'), true);
    assert.equal(isInside('/a/b', '/a/b/x/..y'), true);
    assert.equal(isInside('/a/b', '/a'), false);
    assert.equal(isInside('/a/b', '/a/..b'), false);
    assert.equal(isInside('/a/b', '/a/c/d'), false);
  });

  describe('resolveInside', () => {
    let root: string;
    before(async () => {
      root = await realpath(await mkdtemp(join(tmpdir(), 'bs-safe-dotdot-')));
      await mkdir(join(root, '..snaps', 'x'), { recursive: true });
    });
    after(async () => rm(root, { recursive: true, force: true }));

    it('serves an existing directory named ..snaps and what lies in it', async () => {
      assert.equal(
        await resolveInside(root, '..snaps', { mustExist: true }),
        join(root, '..snaps'),
      );
      assert.equal(
        await resolveInside(root, '..snaps/x', { mustExist: true }),
        join(root, '..snaps', 'x'),
      );
    });
  });
});
