import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  joinLines,
  keyStart,
  sortLikeGnuSort,
  splitLines,
} from '../../../src/checksumdir/gnu-sort.js';
import { integrationRequired } from '../../fixtures/require-integration.js';

const b = (s: string) => Buffer.from(s, 'latin1');

function gnuSort(lines: Buffer[], field: number): Buffer | undefined {
  const res = spawnSync('sort', ['-k', String(field)], {
    input: joinLines(lines),
    env: { ...process.env, LC_ALL: 'C' },
  });
  return res.status === 0 ? res.stdout : undefined;
}

test('keyStart: leading blanks belong to the field, short lines give an empty key', () => {
  assert.equal(keyStart(b('a b c'), 1), 0);
  assert.equal(keyStart(b('a b c'), 2), 1);
  assert.equal(keyStart(b('a  b c'), 3), 4);
  assert.equal(keyStart(b('  a b'), 2), 3);
  assert.equal(keyStart(b('a\tb'), 2), 1);
  assert.equal(keyStart(b('a b'), 7), 3);
  assert.equal(keyStart(b(''), 2), 0);
  assert.throws(() => keyStart(b('x'), 0), RangeError);
});

test('sort -k 7: path order with the space before the path, ties by whole line', () => {
  const lines = [
    '-rw-r--r-- 1    0    0 2024-01-01 00:00:00.0000000000 b',
    '-rw-r--r-- 1    0    0 2024-01-01 00:00:00.0000000000 a b',
    '-rw-r--r-- 1    0    0 2024-01-01 00:00:00.0000000000  lead',
    'drwxr-xr-x 1    0    0 2024-01-01 00:00:00.0000000000 a',
    '-rw-r--r-- 2    0    0 2024-01-01 00:00:00.0000000000 a',
    'b c d e f g h',
    'short',
    '',
  ].map(b);
  const sorted = sortLikeGnuSort(lines, 7).map((l) => l.toString('latin1'));
  assert.deepEqual(sorted, [
    '',
    'short',
    '-rw-r--r-- 1    0    0 2024-01-01 00:00:00.0000000000  lead',
    '-rw-r--r-- 2    0    0 2024-01-01 00:00:00.0000000000 a',
    'drwxr-xr-x 1    0    0 2024-01-01 00:00:00.0000000000 a',
    '-rw-r--r-- 1    0    0 2024-01-01 00:00:00.0000000000 a b',
    '-rw-r--r-- 1    0    0 2024-01-01 00:00:00.0000000000 b',
    'b c d e f g h',
  ]);
});

test('splitLines / joinLines round trip, final newline optional', () => {
  assert.deepEqual(splitLines(b('a\n\nb\n')).map(String), ['a', '', 'b']);
  assert.deepEqual(splitLines(b('a\nb')).map(String), ['a', 'b']);
  assert.deepEqual(splitLines(b('')), []);
  assert.equal(joinLines([b('a'), b(''), b('b')]).toString(), 'a\n\nb\n');
});

// The oracle is the system's GNU sort; without it the comparison is skipped
// with the reason, or fails under BUTTERSINK_REQUIRE_INTEGRATION=1.
const noGnuSort = gnuSort([b('x')], 1) === undefined ? 'GNU sort (coreutils) not available' : false;
if (noGnuSort && integrationRequired()) {
  throw new Error(`${noGnuSort} (BUTTERSINK_REQUIRE_INTEGRATION=1)`);
}
if (noGnuSort) process.stderr.write(`# skipping: ${noGnuSort}\n`);

test('matches LC_ALL=C sort on random tricky lines', { skip: noGnuSort }, () => {
  const alphabet = [' ', ' ', '\t', 'a', 'b', 'A', '.', '/', '\\', '\xe9', '\xff', '0', '-'];
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (const field of [1, 2, 3, 7]) {
    const lines: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      let s = '';
      const len = rnd(24);
      for (let j = 0; j < len; j++) s += alphabet[rnd(alphabet.length)];
      lines.push(b(s));
      if (rnd(5) === 0) lines.push(b(s));
    }
    const expected = gnuSort(lines, field);
    assert.ok(expected);
    assert.ok(joinLines(sortLikeGnuSort(lines, field)).equals(expected), `field ${field}`);
  }
});
