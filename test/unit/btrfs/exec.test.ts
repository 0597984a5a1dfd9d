import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  btrfsFailure,
  isRoot,
  runBtrfs,
  setBtrfsCommand,
  spawnBtrfs,
} from '../../../src/btrfs/exec.js';
import { AbortedError, CommandError, NotBtrfsError, NotRootError } from '../../../src/errors.js';
import { waitFor } from '../../fixtures/wait-for.js';

// Error paths only: a fake `btrfs` script stands in for btrfs-progs.
describe('btrfs exec error mapping', () => {
  let dir = '';
  let prev: readonly string[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bs-exec-'));
    const fake = join(dir, 'fake-btrfs');
    await writeFile(
      fake,
      '#!/bin/sh\ncase "$1" in\n ok) echo "out $2"; exit 0;;\n fail) echo "ERROR: first" >&2; echo "ERROR: it broke" >&2; exit 3;;\n nofs) echo "ERROR: not a btrfs filesystem: /tmp" >&2; exit 1;;\n sleep) exec sleep 30;;\nesac\n',
    );
    await chmod(fake, 0o755);
    prev = setBtrfsCommand([fake]);
  });
  after(async () => {
    setBtrfsCommand(prev);
    await rm(dir, { recursive: true, force: true });
  });

  it('returns stdout on success', async () => {
    assert.equal((await runBtrfs(['ok', 'a b'])).stdout, 'out a b\n');
  });

  it('maps a non-zero exit to CommandError with command line, exit code and stderr', async () => {
    const err = await runBtrfs(['fail', 'x y']).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError);
    assert.equal(err.exitCode, 3);
    assert.match(err.command, /fake-btrfs fail 'x y'$/);
    assert.match(err.stderr, /it broke/);
    assert.match(err.message, /exit code 3.*it broke/);
  });

  it('maps "not a btrfs filesystem" to NotBtrfsError', async () => {
    await assert.rejects(runBtrfs(['nofs']), NotBtrfsError);
  });

  it('maps a missing binary to "btrfs-progs not installed"', async () => {
    const p = setBtrfsCommand([join(dir, 'missing-btrfs')]);
    try {
      await assert.rejects(runBtrfs(['ok']), (e: unknown) => {
        assert.ok(e instanceof CommandError);
        assert.match(e.message, /btrfs-progs not installed/);
        return true;
      });
      const child = spawnBtrfs(['ok']);
      await assert.rejects(child.done, /btrfs-progs not installed/);
    } finally {
      setBtrfsCommand(p);
    }
  });

  it('maps cancellation to AbortedError and kills the child', async () => {
    const ac = new AbortController();
    const child = spawnBtrfs(['sleep'], { signal: ac.signal });
    await waitFor(() => existsSync(`/proc/${child.pid}`), { what: 'the child to start' });
    ac.abort();
    await assert.rejects(child.done, AbortedError);
    assert.equal(child.exited, true);
    assert.throws(() => process.kill(child.pid ?? -1, 0), { code: 'ESRCH' });
  });

  it('maps EPERM to NotRootError only when not root', () => {
    const err = btrfsFailure(['subvolume', 'list', '/'], {
      exitCode: 1,
      stderr: "ERROR: can't perform the search: Operation not permitted\n",
    });
    if (isRoot()) assert.ok(err instanceof CommandError);
    else {
      assert.ok(err instanceof NotRootError);
      assert.equal(err.message, 'must be root to access a btrfs filesystem');
    }
  });
});
