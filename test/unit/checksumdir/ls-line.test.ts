import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { findTime, formatLsLine, symbolicMode } from '../../../src/checksumdir/ls-line.js';

test('symbolicMode: types and special bits as ls -l shows them', () => {
  assert.equal(symbolicMode(constants.S_IFREG | 0o644), '-rw-r--r--');
  assert.equal(symbolicMode(constants.S_IFDIR | 0o755), 'drwxr-xr-x');
  assert.equal(symbolicMode(constants.S_IFLNK | 0o777), 'lrwxrwxrwx');
  assert.equal(symbolicMode(constants.S_IFIFO | 0o600), 'prw-------');
  assert.equal(symbolicMode(constants.S_IFSOCK | 0o755), 'srwxr-xr-x');
  assert.equal(symbolicMode(constants.S_IFCHR | 0o666), 'crw-rw-rw-');
  assert.equal(symbolicMode(constants.S_IFBLK | 0o660), 'brw-rw----');
  assert.equal(symbolicMode(constants.S_IFREG | 0o4755), '-rwsr-xr-x');
  assert.equal(symbolicMode(constants.S_IFREG | 0o4644), '-rwSr--r--');
  assert.equal(symbolicMode(constants.S_IFREG | 0o2755), '-rwxr-sr-x');
  assert.equal(symbolicMode(constants.S_IFREG | 0o2644), '-rw-r-Sr--');
  assert.equal(symbolicMode(constants.S_IFDIR | 0o1777), 'drwxrwxrwt');
  assert.equal(symbolicMode(constants.S_IFDIR | 0o1770), 'drwxrwx--T');
  assert.equal(symbolicMode(constants.S_IFREG | 0o7000), '---S--S--T');
  assert.equal(symbolicMode(0o644), '?rw-r--r--');
});

test('findTime: UTC, 10 fractional digits, floors negative times, unpadded year', () => {
  assert.equal(findTime(0n), '1970-01-01 00:00:00.0000000000');
  assert.equal(findTime(1709528767_123456789n), '2024-03-04 05:06:07.1234567890');
  assert.equal(findTime(-1_250_000_000n), '1969-12-31 23:59:58.7500000000');
  assert.equal(findTime(-302482676_500_000_000n), '1960-06-01 01:02:03.5000000000');
  assert.equal(findTime(-59042995200n * 1_000_000_000n), '99-01-01 00:00:00.0000000000');
  assert.equal(findTime(316516204800n * 1_000_000_000n), '12000-01-01 00:00:00.0000000000');
  assert.equal(findTime(951782400n * 1_000_000_000n), '2000-02-29 00:00:00.0000000000');
});

test('formatLsLine: widths, raw name bytes, trailing newline', () => {
  const facts = { mode: constants.S_IFREG | 0o644, nlink: 2n, uid: 0n, gid: 12345n, mtimeNs: 0n };
  const name = Buffer.from([0x61, 0x20, 0xff, 0x0a, 0x62]);
  const line = formatLsLine(facts, name);
  const head = '-rw-r--r-- 2    0 12345 1970-01-01 00:00:00.0000000000 ';
  assert.ok(line.equals(Buffer.concat([Buffer.from(head), name, Buffer.from('\n')])));
  const wide = formatLsLine({ ...facts, uid: 1000, gid: 100 }, Buffer.from('x')).toString();
  assert.equal(wide, '-rw-r--r-- 2 1000  100 1970-01-01 00:00:00.0000000000 x\n');
});
