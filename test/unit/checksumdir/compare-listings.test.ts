import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import {
  compareListings,
  describeDifferences,
  noDifferences,
} from '../../../src/checksumdir/compare-listings.js';
import { ListingBuilder } from '../../../src/checksumdir/listing.js';

const file = (mode = 0o644, mtimeNs = 0n) => ({
  mode: constants.S_IFREG | mode,
  nlink: 1n,
  uid: 0n,
  gid: 0n,
  mtimeNs,
});
const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);

function listing(files: [string, ReturnType<typeof file>, string][]) {
  const b = new ListingBuilder();
  for (const [name, stats, hex] of files) {
    const relPath = Buffer.from(name);
    b.addEntry({ relPath, stats, mountPoint: false });
    b.addFile(relPath, hex);
  }
  return b.build();
}

test('identical listings: no differences', () => {
  const a = listing([['x', file(), H1]]);
  assert.ok(noDifferences(compareListings(a, a)));
});

test('content, metadata, added and removed are told apart', () => {
  const before = listing([
    ['same', file(), H1],
    ['data', file(), H1],
    ['mode', file(), H1],
    ['gone', file(), H1],
    ['new\nline', file(), H1],
  ]);
  const after = listing([
    ['same', file(), H1],
    ['data', file(), H2],
    ['mode', file(0o600), H1],
    ['fresh', file(), H1],
    ['new\nline', file(), H2],
  ]);
  const d = compareListings(before, after);
  assert.deepEqual(d.content, ['data', 'new\nline']);
  assert.deepEqual(d.metadata, ['mode']);
  assert.deepEqual(d.added, ['fresh']);
  assert.deepEqual(d.removed, ['gone']);
  assert.deepEqual(describeDifferences(d).slice(0, 2), ['added    fresh', 'removed  gone']);
});
