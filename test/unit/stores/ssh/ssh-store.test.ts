import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StoreError } from '../../../../src/errors.js';
import { resolveSshTarget } from '../../../../src/stores/ssh/ssh-connection.js';
import { SshStore, shellQuote } from '../../../../src/stores/ssh/ssh-store.js';
import { parseLocation } from '../../../../src/stores/uri.js';
import type { SshLocation } from '../../../../src/stores/uri.js';

const loc = (uri: string) => parseLocation(uri) as SshLocation;

describe('SshStore (no network)', () => {
  it('quotes remote paths for the shell', () => {
    assert.equal(shellQuote('/mnt/backup/'), '/mnt/backup/');
    assert.equal(shellQuote("/mnt/it's here/"), `'/mnt/it'\\''s here/'`);
    assert.equal(shellQuote('/x; rm -rf /'), `'/x; rm -rf /'`);
  });

  it('builds the remote command from the mode, the directory and --remote-command', () => {
    assert.equal(
      new SshStore(loc('ssh://nas/mnt/backup/'), { mode: 'a' }).remoteCommand,
      'sudo buttersink --server --mode a /mnt/backup/',
    );
    assert.equal(
      new SshStore(loc('ssh://nas/mnt/my snaps/'), {
        mode: 'r',
        remoteCommand: '/opt/bs/bin/buttersink',
        proto: 2,
      }).remoteCommand,
      `/opt/bs/bin/buttersink --server --mode r --proto 2 '/mnt/my snaps/'`,
    );
    assert.equal(
      new SshStore(loc('ssh://nas/')).remoteCommand,
      'sudo buttersink --server --mode w /',
    );
    assert.throws(() => new SshStore(loc('ssh://nas/x/'), { mode: 'x' as 'r' }), StoreError);
  });

  it('resolves the target from ~/.ssh/config, with URI user and port winning', async () => {
    const home = await mkdtemp(join(tmpdir(), 'bs-home-'));
    try {
      await mkdir(join(home, '.ssh'));
      await writeFile(
        join(home, '.ssh', 'config'),
        'Host nas\n HostName 10.0.0.5\n User backup\n Port 2222\n IdentityFile ~/.ssh/nas_key\n',
      );
      await writeFile(join(home, '.ssh', 'nas_key'), 'x');
      await writeFile(join(home, '.ssh', 'id_ed25519'), 'x');
      const t = await resolveSshTarget({ host: 'nas', home });
      assert.equal(t.hostName, '10.0.0.5');
      assert.equal(t.user, 'backup');
      assert.equal(t.port, 2222);
      assert.equal(t.knownHostName, '[10.0.0.5]:2222');
      assert.deepEqual(
        t.identityFiles,
        [join(home, '.ssh', 'nas_key')],
        'explicit identities replace defaults',
      );
      assert.deepEqual(t.knownHostsFiles.slice(0, 1), [join(home, '.ssh', 'known_hosts')]);
      const u = await resolveSshTarget({ host: 'nas', home, user: 'root', port: 22 });
      assert.equal(u.user, 'root');
      assert.equal(u.knownHostName, '10.0.0.5');
      const other = await resolveSshTarget({ host: 'plain', home });
      assert.equal(other.hostName, 'plain');
      assert.deepEqual(
        other.identityFiles,
        [join(home, '.ssh', 'id_ed25519')],
        'defaults that exist',
      );
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
