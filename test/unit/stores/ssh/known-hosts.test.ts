import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  checkHostKey,
  fingerprint,
  hostFieldMatches,
  keyTypeOf,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
} from '../../../../src/stores/ssh/known-hosts.js';

// Made with ssh-keygen; `ssh-keygen -lf` prints SHA256:/bW6yMhQ6qkVFjFGKtdYl7L6k+9o+y84p96sHB0iG04.
const K1 = 'AAAAC3NzaC1lZDI1NTE5AAAAIMoqnGLjFZ/nCQbdRoQcCzlOCAD6Z1eJkbojcVAdeerC';
const key1 = Buffer.from(K1, 'base64');
/** Another well-formed ed25519 blob (same type, different key bytes). */
const key2 = Buffer.concat([key1.subarray(0, key1.length - 32), Buffer.alloc(32, 7)]);

function hashed(name: string, salt = Buffer.alloc(20, 1)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  it('computes OpenSSH fingerprints and key types', () => {
    assert.equal(fingerprint(key1), 'SHA256:/bW6yMhQ6qkVFjFGKtdYl7L6k+9o+y84p96sHB0iG04');
    assert.equal(keyTypeOf(key1), 'ssh-ed25519');
    assert.equal(keyTypeOf(Buffer.from([0, 0])), undefined);
  });

  it('names hosts on other ports in brackets', () => {
    assert.equal(knownHostName('nas', 22), 'nas');
    assert.equal(knownHostName('127.0.0.1', 2222), '[127.0.0.1]:2222');
  });

  it('parses plain, hashed, marked and commented lines, skipping junk', () => {
    const text = [
      '# comment',
      `nas,192.168.1.2 ssh-ed25519 ${K1} comment here`,
      `${hashed('[backup]:2222')} ssh-ed25519 ${K1}`,
      `@revoked * ssh-ed25519 ${key2.toString('base64')}`,
      '@cert-authority *.example ssh-ed25519 ' + K1,
      'garbage',
      `nas ssh-rsa ${K1}`,
      '',
    ].join('\n');
    const e = parseKnownHosts(text, 'kh');
    assert.deepEqual(
      e.map((x) => [x.line, x.marker ?? '', x.keyType]),
      [
        [2, '', 'ssh-ed25519'],
        [3, '', 'ssh-ed25519'],
        [4, 'revoked', 'ssh-ed25519'],
        [5, 'cert-authority', 'ssh-ed25519'],
      ],
      'a line whose type does not match its blob is skipped',
    );
  });

  it('matches host fields: lists, wildcards, negation, hashes', () => {
    assert.equal(hostFieldMatches('nas,192.168.1.2', '192.168.1.2'), true);
    assert.equal(hostFieldMatches('*.lan,!evil.lan', 'nas.lan'), true);
    assert.equal(hostFieldMatches('*.lan,!evil.lan', 'evil.lan'), false);
    assert.equal(hostFieldMatches('nas?', 'nas1'), true);
    assert.equal(hostFieldMatches('NAS', 'nas'), true);
    assert.equal(hostFieldMatches(hashed('[backup]:2222'), '[backup]:2222'), true);
    assert.equal(hostFieldMatches(hashed('[backup]:2222'), 'backup'), false);
    assert.equal(hostFieldMatches('|1|bad', 'backup'), false);
  });

  it('tells known, changed, unknown and revoked keys apart', () => {
    const entries = parseKnownHosts(
      [
        `nas ssh-ed25519 ${K1}`,
        `${hashed('[h]:2222')} ssh-ed25519 ${K1}`,
        `rsaonly ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7`,
      ].join('\n'),
      'kh',
    );
    assert.equal(checkHostKey(entries, 'nas', key1).status, 'known');
    assert.equal(checkHostKey(entries, '[h]:2222', key1).status, 'known');
    const changed = checkHostKey(entries, 'nas', key2);
    assert.equal(changed.status, 'changed');
    assert.equal(changed.status === 'changed' && changed.entries[0]?.line, 1);
    assert.equal(checkHostKey(entries, '[h]:2222', key2).status, 'changed');
    assert.deepEqual(checkHostKey(entries, 'other', key1), { status: 'unknown' });
    const revoked = parseKnownHosts(`@revoked * ssh-ed25519 ${K1}\nnas ssh-ed25519 ${K1}`, 'kh');
    assert.equal(checkHostKey(revoked, 'nas', key1).status, 'revoked');
  });

  it('lowercases host names before matching, hashing and writing them, as OpenSSH does', () => {
    assert.equal(knownHostName('NAS.Lan', 22), 'nas.lan');
    assert.equal(knownHostName('Backup.LAN', 2222), '[backup.lan]:2222');
    assert.equal(hostFieldMatches(hashed('nas.lan'), 'NAS.lan'), true);
    assert.equal(hostFieldMatches(hashed('[backup]:2222'), '[BACKUP]:2222'), true);
    assert.equal(knownHostsLine('[NAS]:2200', key1), `[nas]:2200 ssh-ed25519 ${K1}\n`);
    const entries = parseKnownHosts(`${hashed('nas')} ssh-ed25519 ${K1}`, 'kh');
    assert.equal(checkHostKey(entries, 'NAS', key1).status, 'known');
    assert.equal(checkHostKey(entries, 'NAS', key2).status, 'changed');
  });

  it('reports a host known only under another key type as changed, never unknown', () => {
    const entries = parseKnownHosts(
      [
        `nas ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7`,
        `${hashed('[h]:2222')} ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7`,
      ].join('\n'),
      'kh',
    );
    const c = checkHostKey(entries, 'nas', key1);
    assert.equal(c.status, 'changed');
    assert.deepEqual(c.status === 'changed' && c.entries.map((e) => [e.file, e.line, e.keyType]), [
      ['kh', 1, 'ssh-rsa'],
    ]);
    assert.equal(checkHostKey(entries, '[h]:2222', key1).status, 'changed');
    assert.equal(checkHostKey(entries, 'other', key1).status, 'unknown');
  });

  it('writes the line accept-new appends, which then matches', () => {
    const line = knownHostsLine('[127.0.0.1]:2200', key1);
    assert.equal(line, `[127.0.0.1]:2200 ssh-ed25519 ${K1}\n`);
    assert.equal(
      checkHostKey(parseKnownHosts(line, 'kh'), '[127.0.0.1]:2200', key1).status,
      'known',
    );
  });

  it('offers the host key types already known for the host first', () => {
    const rsa = parseKnownHosts(`nas ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7`, 'kh');
    assert.equal(rsa.length, 1);
    const algs = preferredHostKeyAlgorithms(rsa, 'nas');
    assert.deepEqual(algs.slice(0, 3), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    assert.equal(preferredHostKeyAlgorithms(rsa, 'other')[0], 'ssh-ed25519');
    assert.equal(algs.length, 7);
  });
});
