import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSubvolumeList, parseUtcTime } from '../../../src/btrfs/subvolume-list.js';

// Captured from btrfs-progs 6.2: `btrfs subvolume list -a -g -c -u -q -R` on a subvol= mount.
const FULL = [
  'ID 256 gen 8 cgen 7 top level 5 parent_uuid -                                    received_uuid -                                    uuid 1b70b92d-ed00-274f-bd94-91dd56a64b43 path <FS_TREE>/a b',
  'ID 258 gen 7 cgen 7 top level 5 parent_uuid 1b70b92d-ed00-274f-bd94-91dd56a64b43 received_uuid 3c9e2f1a-0000-4000-8000-000000000001 uuid d1e941fc-36a6-5643-94e3-fd83dc4daa6b path <FS_TREE>/d/snap 1',
  'ID 259 gen 8 cgen 8 top level 256 parent_uuid 1b70b92d-ed00-274f-bd94-91dd56a64b43 received_uuid -                                    uuid 0102bda7-63d9-3a46-8856-8e4117f2ce14 path a b/nested',
  'ID 260 gen 9 cgen 9 top level 5 parent_uuid - received_uuid - uuid 0102bda7-63d9-3a46-8856-8e4117f2ce15 path has',
  'newline path',
  '',
].join('\n');

describe('parseSubvolumeList', () => {
  it('parses every column and keeps spaces in paths', () => {
    const lines = parseSubvolumeList(FULL);
    assert.equal(lines.length, 4);
    assert.deepEqual(lines[0], {
      id: 256,
      path: 'a b',
      gen: 8,
      cgen: 7,
      topLevel: 5,
      parentUuid: undefined,
      receivedUuid: undefined,
      uuid: '1b70b92d-ed00-274f-bd94-91dd56a64b43',
    });
    assert.equal(lines[1]?.path, 'd/snap 1');
    assert.equal(lines[1]?.parentUuid, '1b70b92d-ed00-274f-bd94-91dd56a64b43');
    assert.equal(lines[1]?.receivedUuid, '3c9e2f1a-0000-4000-8000-000000000001');
    assert.equal(lines[2]?.path, 'a b/nested');
    assert.equal(lines[2]?.topLevel, 256);
  });

  it('joins a continuation line to the previous path (newline in a name)', () => {
    assert.equal(parseSubvolumeList(FULL)[3]?.path, 'has\nnewline path');
  });

  it('parses the otime of `list -s` and the short `list -r` form', () => {
    const snaps = parseSubvolumeList(
      'ID 258 gen 7 cgen 7 top level 5 otime 2026-11-26 06:28:47 path d/snap 1\n',
    );
    assert.equal(snaps[0]?.otime, '2026-11-26 06:28:47');
    assert.equal(snaps[0]?.path, 'd/snap 1');
    assert.equal(parseUtcTime(snaps[0]?.otime)?.toISOString(), '2026-11-26T06:28:47.000Z');
    const ro = parseSubvolumeList('ID 258 gen 7 top level 5 path <FS_TREE>/d/snap 1\n');
    assert.deepEqual(ro, [{ id: 258, path: 'd/snap 1', gen: 7, topLevel: 5 }]);
  });

  it('returns nothing for empty output and rejects malformed times', () => {
    assert.deepEqual(parseSubvolumeList(''), []);
    assert.equal(parseUtcTime('-'), undefined);
    assert.equal(parseUtcTime(undefined), undefined);
  });
});
