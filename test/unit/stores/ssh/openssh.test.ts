import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostKeyError, StoreError, UsageError } from '../../../../src/errors.js';
import {
  describeSshFailure,
  openSshArgv,
  splitCommandLine,
} from '../../../../src/stores/ssh/openssh.js';

describe('splitCommandLine', () => {
  it('splits on blanks and honours quotes and backslashes as a shell would', () => {
    assert.deepEqual(splitCommandLine('ssh'), ['ssh']);
    assert.deepEqual(splitCommandLine('  ssh  -F  /a/cfg '), ['ssh', '-F', '/a/cfg']);
    assert.deepEqual(splitCommandLine(`ssh -o 'ProxyCommand=nc %h %p' x`), [
      'ssh',
      '-o',
      'ProxyCommand=nc %h %p',
      'x',
    ]);
    assert.deepEqual(splitCommandLine(`ssh -F "/my dir/\\"cfg\\""`), [
      'ssh',
      '-F',
      '/my dir/"cfg"',
    ]);
    assert.deepEqual(splitCommandLine(`ssh -F /my\\ dir/cfg a''b`), [
      'ssh',
      '-F',
      '/my dir/cfg',
      'ab',
    ]);
  });

  it('refuses an empty line and an unterminated quote', () => {
    assert.throws(() => splitCommandLine('   '), UsageError);
    assert.throws(() => splitCommandLine(`ssh -o 'x`), UsageError);
    assert.throws(() => splitCommandLine(`ssh -o "x`), UsageError);
  });
});

describe('openSshArgv', () => {
  it('puts the user program words first, then ours, then -- host command', () => {
    const argv = openSshArgv(
      'ssh -o Ciphers=aes128-gcm@openssh.com',
      { host: 'nas', user: 'backup', port: 2222, identityFiles: ['/k1'] },
      'sudo buttersink --server --mode a /bak/',
    );
    assert.deepEqual(argv, [
      'ssh',
      '-o',
      'Ciphers=aes128-gcm@openssh.com',
      '-T',
      '-x',
      '-a',
      '-e',
      'none',
      '-i',
      '/k1',
      '-l',
      'backup',
      '-p',
      '2222',
      '--',
      'nas',
      'sudo buttersink --server --mode a /bak/',
    ]);
  });

  it('a host that looks like an option stays the host (after --)', () => {
    const argv = openSshArgv('ssh', { host: '-oProxyCommand=evil' }, 'true');
    assert.deepEqual(argv.slice(-3), ['--', '-oProxyCommand=evil', 'true']);
  });

  it('never weakens host key checking; accept-new only when asked', () => {
    const plain = openSshArgv('ssh', { host: 'h' }, 'true').join(' ');
    assert.doesNotMatch(plain, /StrictHostKeyChecking|UserKnownHostsFile=\/dev\/null/);
    const acceptNew = openSshArgv('ssh', { host: 'h', acceptNewHostKey: true }, 'true');
    assert.ok(acceptNew.includes('StrictHostKeyChecking=accept-new'));
  });

  it('maps the config file and known_hosts files', () => {
    const argv = openSshArgv(
      'ssh',
      { host: 'h', configFile: '/c', knownHostsFiles: ['/k1', '/k2'] },
      'true',
    );
    assert.deepEqual(argv.slice(6, 10), ['-F', '/c', '-o', 'UserKnownHostsFile=/k1 /k2']);
  });
});

describe('describeSshFailure', () => {
  const login = 'ssh -p 2222 root@h true';

  it('an unknown host key: HostKeyError naming accept-new and how to check by hand', () => {
    const err = describeSshFailure(
      'ssh://h',
      login,
      'No ED25519 host key is known for [h]:2222 and you have requested strict checking.\nHost key verification failed.\n',
    );
    assert.ok(err instanceof HostKeyError);
    assert.match(
      err.message,
      /^ssh:\/\/h: ssh refused the host key: the host is not in known_hosts/,
    );
    assert.match(err.message, /--accept-new-host-key/);
    assert.match(err.message, /ssh -p 2222 root@h true/);
    assert.doesNotMatch(err.message, /\n/);
  });

  it('a changed host key says so, and never suggests accept-new', () => {
    const err = describeSshFailure(
      'ssh://h',
      login,
      '@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@\nIT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\nHost key verification failed.\n',
    );
    assert.ok(err instanceof HostKeyError);
    assert.match(err.message, /CHANGED/);
    assert.match(err.message, /ssh-keygen -R/);
    assert.doesNotMatch(err.message, /accept-new|\n/);
  });

  it('failed authentication and other failures: one line with what to try', () => {
    const auth = describeSshFailure('ssh://h', login, 'root@h: Permission denied (publickey).\n');
    assert.ok(auth instanceof StoreError);
    assert.match(
      auth.message,
      /ssh authentication failed \(root@h: Permission denied \(publickey\)\.\); check -i, ssh-add/,
    );
    const refused = describeSshFailure(
      'ssh://h',
      login,
      'ssh: connect to host h port 2222: Connection refused\n',
    );
    assert.equal(
      refused.message,
      'ssh://h: ssh failed (exit 255): ssh: connect to host h port 2222: Connection refused; run ssh -p 2222 root@h true to see why',
    );
    assert.match(describeSshFailure('ssh://h', login, '').message, /no message/);
  });
});
