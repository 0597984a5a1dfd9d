/** argv → config, on plain arrays: no process, no stores, no output. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseButtersinkArgs, storeOptionsOf } from '../../../src/cli/config.js';
import type { ButtersinkConfig } from '../../../src/cli/config.js';

function config(argv: string[]): ButtersinkConfig {
  const r = parseButtersinkArgs(argv, '9.9.9');
  assert.ok(r.ok, `parses ${argv.join(' ')}`);
  return r.config;
}

describe('parseButtersinkArgs', () => {
  it('one location lists it; two sync the first to the second', () => {
    const list = config(['/mnt/snaps/']);
    assert.equal(list.command, 'list');
    assert.equal(list.dst, '/mnt/snaps/');
    const sync = config(['-n', '/a/', 's3://b/p/']);
    assert.deepEqual(
      { command: sync.command, src: sync.command === 'sync' && sync.src, dst: sync.dst },
      { command: 'sync', src: '/a/', dst: 's3://b/p/' },
    );
    assert.equal(sync.flags.dryRun, true);
  });

  it('--bwlimit reads a rate as rsync does; a bad one is a usage error (exit 2)', () => {
    assert.equal(config(['--bwlimit', '1.5M', '/a/', '/b/']).flags.bwlimit, 1.5 * 1024 * 1024);
    assert.equal(config(['--bwlimit', '0', '/a/', '/b/']).flags.bwlimit, 0);
    assert.equal(config(['/a/', '/b/']).flags.bwlimit, undefined);
    const bad = parseButtersinkArgs(['--bwlimit', 'fast', '/a/', '/b/'], '9.9.9');
    assert.ok(!bad.ok && bad.exitCode === 2 && /--bwlimit/.test(bad.stderr), JSON.stringify(bad));
  });

  it('--verify with one location verifies; with two it syncs', () => {
    assert.equal(config(['--verify', 's3://b/p/']).command, 'verify');
    assert.equal(config(['--verify', '/a/', 's3://b/p/']).command, 'sync');
  });

  it('gives the defaults, counts -q and collects repeatable flags', () => {
    const { flags } = config([
      '-qq',
      '--exclude',
      '^tmp',
      '--exclude',
      'x$',
      '-i',
      'k1',
      '-i',
      'k2',
      '/d/',
    ]);
    assert.equal(flags.quiet, 2);
    assert.deepEqual(flags.exclude.map(String), ['/^tmp/', '/x$/']);
    assert.deepEqual(flags.identity, ['k1', 'k2']);
    assert.equal(flags.partSize, 16);
    assert.equal(flags.jobs, 4);
    assert.equal(flags.encrypt, true);
    assert.equal(flags.spaceCheck, true);
    assert.equal(flags.timeout, undefined);
  });

  it("a usage error is exit 2 with commander's text, and nothing is written", () => {
    const r = parseButtersinkArgs(['--jobs', '0', '/d/'], '9.9.9');
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /expected a whole number from 1 to 64/);
    const bad = parseButtersinkArgs(['--exclude', '(', '/d/'], '9.9.9');
    assert.ok(!bad.ok);
    assert.match(bad.stderr, /not a regular expression: \(/);
  });

  it('no location is a usage error; --version and --help are exit 0 on stdout', () => {
    const none = parseButtersinkArgs([], '9.9.9');
    assert.ok(!none.ok);
    assert.equal(none.exitCode, 2);
    assert.equal(none.stderr, 'buttersink: missing <dst> (see buttersink --help)\n');
    const v = parseButtersinkArgs(['-V'], '9.9.9');
    assert.ok(!v.ok);
    assert.deepEqual([v.exitCode, v.stdout], [0, '9.9.9\n']);
    const help = parseButtersinkArgs(['--help'], '9.9.9');
    assert.ok(!help.ok);
    assert.equal(help.exitCode, 0);
    assert.match(help.stdout, /The trailing\n"\/" \*is\* significant/);
  });
});

describe('storeOptionsOf', () => {
  it('turns flags into store options once: MiB to bytes, seconds to ms', () => {
    const opts = storeOptionsOf(
      config(['--part-size', '8', '--timeout', '30', '--proto', '2', '--no-encrypt', '/d/']).flags,
    );
    assert.equal(opts.proto, 2);
    assert.equal(opts.s3?.partSize, 8 * 1024 * 1024);
    assert.equal(opts.s3?.encrypt, false);
    assert.equal(opts.s3?.requestTimeoutMs, 30_000);
    assert.equal(opts.ssh?.idleTimeoutMs, 30_000);
    assert.equal(opts.ssh?.mode, undefined, 'the mode comes from the role, in the library');
  });

  it('leaves out what was not given', () => {
    const opts = storeOptionsOf(config(['/d/']).flags);
    assert.equal('proto' in opts, false);
    assert.equal(opts.s3?.endpoint, undefined);
    assert.equal(opts.ssh?.identityFiles, undefined);
  });
});

describe('archive flags', () => {
  it('--compress, --encrypt-to(-file), --passphrase-file, --age-identity reach the S3 options', () => {
    const opts = storeOptionsOf(
      config([
        '--compress',
        'zstd:9',
        '--encrypt-to',
        'age1a',
        '--encrypt-to',
        'age1b',
        '--encrypt-to-file',
        '/r.txt',
        '--age-identity',
        '/k.txt',
        '/a/',
        's3://b/p/',
      ]).flags,
    );
    assert.deepEqual(opts.s3?.archive, {
      compressLevel: 9,
      recipients: ['age1a', 'age1b'],
      recipientFiles: ['/r.txt'],
      identityFiles: ['/k.txt'],
    });
    assert.equal(
      storeOptionsOf(config(['--compress', 'zstd', '/d/']).flags).s3?.archive?.compressLevel,
      3,
    );
    assert.equal(
      storeOptionsOf(config(['/d/']).flags).s3?.archive?.compressLevel,
      undefined,
      'off by default',
    );
  });

  it('the passphrase file: the flag, else BUTTERSINK_PASSPHRASE_FILE from the env given', () => {
    const env = { BUTTERSINK_PASSPHRASE_FILE: '/env-pass' };
    assert.equal(
      storeOptionsOf(config(['/d/']).flags, env).s3?.archive?.passphraseFile,
      '/env-pass',
    );
    const flag = config(['--passphrase-file', '/p', '/d/']).flags;
    assert.equal(storeOptionsOf(flag, env).s3?.archive?.passphraseFile, '/p');
    assert.equal(storeOptionsOf(config(['/d/']).flags).s3?.archive?.passphraseFile, undefined);
  });

  it('refuses a compressor or level it does not know', () => {
    for (const bad of ['gzip', 'zstd:0', 'zstd:20', 'zstd:x']) {
      const r = parseButtersinkArgs(['--compress', bad, '/d/'], '9.9.9');
      assert.equal(r.ok, false, bad);
      assert.ok(!r.ok && /zstd:LEVEL/.test(r.stderr), bad);
    }
  });
});
