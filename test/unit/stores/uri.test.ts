import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatLocation, parseLocation } from '../../../src/stores/uri.js';
import { UsageError } from '../../../src/errors.js';

describe('parseLocation', () => {
  it('reads a local directory (trailing slash) and a single snapshot', () => {
    assert.deepEqual(parseLocation('/mnt/pool/snaps/'), {
      kind: 'btrfs',
      uri: '/mnt/pool/snaps/',
      dir: '/mnt/pool/snaps',
    });
    assert.deepEqual(parseLocation('/mnt/pool/snaps/2024-01-01'), {
      kind: 'btrfs',
      uri: '/mnt/pool/snaps/2024-01-01',
      dir: '/mnt/pool/snaps',
      snapshot: '2024-01-01',
    });
    assert.deepEqual(parseLocation('btrfs:///mnt/b/'), {
      kind: 'btrfs',
      uri: 'btrfs:///mnt/b/',
      dir: '/mnt/b',
    });
    assert.equal(parseLocation('/').kind, 'btrfs');
    assert.equal((parseLocation('/') as { dir: string }).dir, '/');
  });

  it('resolves relative paths against cwd and keeps the trailing slash meaning', () => {
    assert.deepEqual(parseLocation('snaps/', '/mnt/pool'), {
      kind: 'btrfs',
      uri: 'snaps/',
      dir: '/mnt/pool/snaps',
    });
    const one = parseLocation('snaps/a b', '/mnt/pool');
    assert.equal(one.snapshot, 'a b');
    assert.equal((one as { dir: string }).dir, '/mnt/pool/snaps');
  });

  it('reads ssh URIs with user, port and IPv6 host', () => {
    assert.deepEqual(parseLocation('ssh://fred@nas:2222/bak/'), {
      kind: 'ssh',
      uri: 'ssh://fred@nas:2222/bak/',
      host: 'nas',
      user: 'fred',
      port: 2222,
      dir: '/bak',
    });
    const v6 = parseLocation('ssh://[::1]/bak/snap');
    assert.equal(v6.kind, 'ssh');
    assert.equal((v6 as { host: string }).host, '::1');
    assert.equal(v6.snapshot, 'snap');
  });

  it('reads s3 URIs', () => {
    assert.deepEqual(parseLocation('s3://my-bucket/backups/home/'), {
      kind: 's3',
      uri: 's3://my-bucket/backups/home/',
      bucket: 'my-bucket',
      prefix: 'backups/home',
    });
    assert.deepEqual(parseLocation('s3://my-bucket/'), {
      kind: 's3',
      uri: 's3://my-bucket/',
      bucket: 'my-bucket',
      prefix: '',
    });
    assert.equal(parseLocation('s3://my-bucket/a/snap').snapshot, 'snap');
  });

  it('rejects bad input with a one-line UsageError', () => {
    for (const bad of [
      '',
      'ftp://x/y/',
      'ssh://host',
      'ssh:///path/',
      'ssh://h:99999/p/',
      'ssh://h:/p/',
      's3://Bad_Bucket/x/',
      'btrfs://relative/',
    ]) {
      assert.throws(() => parseLocation(bad), UsageError, bad);
    }
  });

  it('formats back to a URI', () => {
    for (const uri of ['/mnt/x/', '/mnt/x/snap', 'ssh://u@h:22/a/b/', 's3://bkt/p/q/s']) {
      assert.equal(formatLocation(parseLocation(uri)), uri);
    }
  });
});
