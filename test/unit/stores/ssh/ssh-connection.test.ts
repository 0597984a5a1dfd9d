import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StoreError } from '../../../../src/errors.js';
import { fingerprint, parseKnownHosts } from '../../../../src/stores/ssh/known-hosts.js';
import {
  SshConnection,
  decideHostKey,
  readIdentityFile,
  resolveSshTarget,
} from '../../../../src/stores/ssh/ssh-connection.js';
import type { SshTarget } from '../../../../src/stores/ssh/ssh-connection.js';

// An ed25519 public key blob (as in known-hosts.test.ts).
const K1 = 'AAAAC3NzaC1lZDI1NTE5AAAAIMoqnGLjFZ/nCQbdRoQcCzlOCAD6Z1eJkbojcVAdeerC';
const key1 = Buffer.from(K1, 'base64');
const RSA = 'AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7';

function target(knownHostName: string): SshTarget {
  return {
    alias: 'nas',
    hostName: 'nas',
    port: 22,
    user: 'backup',
    identityFiles: [],
    identitiesOnly: false,
    knownHostsFiles: ['/home/u/.ssh/known_hosts'],
    knownHostName,
  };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bs-sshconn-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('SshConnection (no network)', () => {
  it('accept-new adds a host with no entry, and refuses one known under another key type', () => {
    const known = parseKnownHosts(`# header\nnas ssh-rsa ${RSA}\n`, 'kh');
    assert.deepEqual(decideHostKey(target('other'), known, key1, true), {
      action: 'add',
      file: '/home/u/.ssh/known_hosts',
    });
    const d = decideHostKey(target('nas'), known, key1, true);
    assert.equal(d.action, 'refuse', 'a known host is never accepted anew');
    const msg = d.action === 'refuse' ? d.message : '';
    assert.match(msg, /^HOST KEY FOR nas HAS CHANGED/);
    assert.ok(msg.includes(`ssh-ed25519 key ${fingerprint(key1)}`), msg);
    assert.ok(msg.includes('kh:2 (ssh-rsa)'), msg);
    assert.ok(!msg.includes('\n'), 'one line');
    assert.equal(decideHostKey(target('nas'), known, key1, false).action, 'refuse');
    const same = parseKnownHosts(`nas ssh-ed25519 ${K1}`, 'kh');
    assert.deepEqual(decideHostKey(target('nas'), same, key1, true), { action: 'accept' });
  });

  it('looks the host up lowercased, so accept-new does not re-add a known host in other case', async () => {
    await withTempDir(async (home) => {
      const t = await resolveSshTarget({
        host: 'NAS.Example',
        port: 2222,
        home,
        knownHostsFiles: [join(home, 'kh')],
      });
      assert.equal(t.knownHostName, '[nas.example]:2222');
      const known = parseKnownHosts(`[nas.example]:2222 ssh-rsa ${RSA}`, 'kh');
      assert.equal(decideHostKey(t, known, key1, true).action, 'refuse');
    });
  });

  it('refuses identity files that group or others can access, as OpenSSH does', async () => {
    await withTempDir(async (dir) => {
      const key = join(dir, 'id_test');
      await writeFile(key, 'not a key');
      await chmod(key, 0o644);
      await assert.rejects(readIdentityFile(key), (err: Error) => {
        assert.ok(err instanceof StoreError);
        assert.equal(
          err.message,
          `identity file ${key}: permissions 0644 are too open; it must be readable only by its owner (chmod 600 ${key})`,
        );
        return true;
      });
      await chmod(key, 0o640);
      await assert.rejects(readIdentityFile(key), /permissions 0640 are too open/);
      await chmod(key, 0o600);
      assert.equal((await readIdentityFile(key)).toString(), 'not a key');
      await chmod(key, 0o644);
      await assert.rejects(
        SshConnection.connect({
          host: '127.0.0.1',
          port: 9,
          home: dir,
          agent: false,
          identityFiles: [key],
          knownHostsFiles: [join(dir, 'kh')],
        }),
        /identity file .*id_test: permissions 0644 are too open/,
        'connect refuses the -i file before connecting',
      );
    });
  });
});
