/**
 * Which SSH server mode each role asks for (one sudoers line per mode), and the
 * wrappers the command line puts around network stores.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore, sshModeFor } from '../../../src/stores/open-store.js';
import { asS3Store } from '../../../src/cli/s3-only.js';
import { loadStore } from '../../../src/stores/load-store.js';
import { S3Store } from '../../../src/stores/s3/s3-store.js';
import { SshStore } from '../../../src/stores/ssh/ssh-store.js';
import { DryRunStore } from '../../../src/stores/wrappers/dry-run-store.js';
import { RetryStore } from '../../../src/stores/wrappers/retry-store.js';
import { unwrapStore } from '../../../src/stores/wrappers/unwrap.js';
import { parseLocation } from '../../../src/stores/uri.js';

describe('sshModeFor', () => {
  it('source reads, dest adds, deleting writes; inspecting reads', () => {
    assert.equal(sshModeFor('source'), 'r');
    assert.equal(sshModeFor('source', true), 'r');
    assert.equal(sshModeFor('dest'), 'a');
    assert.equal(sshModeFor('dest', true), 'w');
    assert.equal(sshModeFor('inspect'), 'r');
    assert.equal(sshModeFor('inspect', true), 'w');
  });
});

describe('openStore', () => {
  const loc = parseLocation('ssh://user@host/srv/snaps/');
  it("an SSH store opened for a role asks for that role's mode; without one, w", async () => {
    const stores = [
      openStore(loc, { role: 'source' }),
      openStore(loc, { role: 'dest' }),
      openStore(loc, { role: 'dest', deletes: true }),
      openStore(loc),
      openStore(loc, { role: 'dest', ssh: { mode: 'r' } }),
    ];
    try {
      assert.deepEqual(
        stores.map((s) => (s as SshStore).mode),
        ['r', 'a', 'w', 'w', 'r'],
      );
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe('loadStore (the command line)', () => {
  it('wraps an SSH store in a RetryStore that forwards what it can do (S3: the SDK retries); unwrapStore sees through it', async () => {
    const s3 = await loadStore(parseLocation('s3://bkt/p/'));
    const ssh = await loadStore(parseLocation('ssh://user@host/srv/snaps/'), { role: 'dest' });
    try {
      assert.ok(s3 instanceof S3Store, 'S3: not wrapped, the SDK retries each request');
      assert.ok(ssh instanceof RetryStore, 'SSH: retried');
      assert.ok(unwrapStore(ssh) instanceof SshStore);
      assert.equal(typeof ssh.lock, typeof unwrapStore(ssh).lock);
      assert.equal(typeof ssh.copyFrom, typeof unwrapStore(ssh).copyFrom);
      assert.equal(typeof ssh.streamSupport, 'function', 'SSH says what it can receive');
      assert.equal((unwrapStore(ssh) as SshStore).mode, 'a');
      assert.equal(await asS3Store(s3), unwrapStore(s3));
      const wrapped = new DryRunStore(new RetryStore(s3));
      assert.equal(await asS3Store(wrapped), s3, 'through two wrappers');
      assert.equal(await asS3Store(ssh), undefined);
    } finally {
      await Promise.all([s3.close(), ssh.close()]);
    }
  });
});
