/** Which SSH server mode each role asks for (one sudoers line per mode). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore, sshModeFor } from '../../../src/stores/open-store.js';
import { SshStore } from '../../../src/stores/ssh/ssh-store.js';
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
