import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../../src/errors.js';
import {
  expandPath,
  hostConfig,
  matchPattern,
  matchPatternList,
  parseSshConfig,
} from '../../../../src/stores/ssh/ssh-config.js';

const CONFIG = `
# global
IdentityFile ~/.ssh/global_key
Host nas nas.lan
  HostName 192.168.1.20
  User backup
  Port 2222
  IdentityFile ~/.ssh/nas_%r
Host *.lan !evil.lan
  User lanuser
  Port=2022
Match host nas
  User matched
Host n?s
  HostName "other host"
  IdentitiesOnly yes
Host *
  User fallback
  UserKnownHostsFile ~/.ssh/kh1 /etc/kh2
  IdentityFile %d/.ssh/last
Host alias
  HostName real-%h.example
`;

describe('ssh config subset', () => {
  const blocks = parseSshConfig(CONFIG);

  it('matches patterns with * ? and negation', () => {
    assert.equal(matchPattern('*.lan', 'x.lan'), true);
    assert.equal(matchPattern('n?s', 'nas'), true);
    assert.equal(matchPattern('n?s', 'naas'), false);
    assert.equal(matchPattern('a.b', 'axb'), false, 'dots are literal');
    assert.equal(matchPatternList(['*.lan', '!evil.lan'], 'evil.lan'), false);
    assert.equal(matchPatternList(['!evil.lan'], 'x'), false, 'a negation alone matches nothing');
  });

  it('takes the first value of each keyword and accumulates IdentityFile', () => {
    assert.deepEqual(hostConfig(blocks, 'nas'), {
      identityFiles: ['~/.ssh/global_key', '~/.ssh/nas_%r', '%d/.ssh/last'],
      hostName: '192.168.1.20',
      user: 'backup',
      port: 2222,
      identitiesOnly: true,
      userKnownHostsFiles: ['~/.ssh/kh1', '/etc/kh2'],
    });
  });

  it('applies wildcard blocks, skips Match blocks and honours negation', () => {
    const lan = hostConfig(blocks, 'box.lan');
    assert.equal(lan.user, 'lanuser');
    assert.equal(lan.port, 2022);
    assert.equal(lan.hostName, undefined);
    const evil = hostConfig(blocks, 'evil.lan');
    assert.equal(evil.user, 'fallback');
    assert.equal(evil.port, undefined);
  });

  it('expands %h in HostName and ~ / % tokens in paths', () => {
    assert.equal(hostConfig(blocks, 'alias').hostName, 'real-alias.example');
    const ctx = { home: '/home/u', localUser: 'u', host: 'h', remoteUser: 'r' };
    assert.equal(expandPath('~/.ssh/id_%r@%h', ctx), '/home/u/.ssh/id_r@h');
    assert.equal(expandPath('%d/%u/%%', ctx), '/home/u/u/%');
    assert.equal(expandPath('/abs/~/x', ctx), '/abs/~/x');
  });

  it('reads quoted values and rejects a bad Port', () => {
    assert.equal(hostConfig(parseSshConfig('Host q\n HostName "a b"\n'), 'q').hostName, 'a b');
    assert.throws(() => hostConfig(parseSshConfig('Host p\n Port 99999\n'), 'p'), UsageError);
  });

  it('returns nothing but defaults for an empty config', () => {
    assert.deepEqual(hostConfig(parseSshConfig(''), 'x'), { identityFiles: [] });
  });
});
