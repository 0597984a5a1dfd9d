import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseShowTime, parseSubvolumeShow } from '../../../src/btrfs/subvolume-show.js';

// Captured from btrfs-progs 6.2 `btrfs subvolume show`.
const SHOW = `d/snap 1
\tName: \t\t\tsnap 1
\tUUID: \t\t\td1e941fc-36a6-5643-94e3-fd83dc4daa6b
\tParent UUID: \t\t1b70b92d-ed00-274f-bd94-91dd56a64b43
\tReceived UUID: \t\t-
\tCreation time: \t\t2026-11-26 06:28:47 +0000
\tSubvolume ID: \t\t258
\tGeneration: \t\t7
\tGen at creation: \t7
\tParent ID: \t\t5
\tTop level ID: \t\t5
\tFlags: \t\t\treadonly
\tSend transid: \t\t0
\tSend time: \t\t2026-11-26 06:28:47 +0000
\tReceive transid: \t0
\tReceive time: \t\t-
\tSnapshot(s):
\t\t\t\td/snap 2
\t\t\t\tother/snap 3
\tQuota group:\t\tn/a
`;

describe('parseSubvolumeShow', () => {
  it('reads UUIDs, ids, generations, flags and snapshots', () => {
    const s = parseSubvolumeShow(SHOW);
    assert.equal(s.fsPath, 'd/snap 1');
    assert.equal(s.name, 'snap 1');
    assert.equal(s.uuid, 'd1e941fc-36a6-5643-94e3-fd83dc4daa6b');
    assert.equal(s.parentUuid, '1b70b92d-ed00-274f-bd94-91dd56a64b43');
    assert.equal(s.receivedUuid, undefined);
    assert.equal(s.id, 258);
    assert.equal(s.generation, 7);
    assert.equal(s.otransid, 7);
    assert.equal(s.topLevel, 5);
    assert.equal(s.readOnly, true);
    assert.equal(s.stransid, 0);
    assert.equal(s.otime?.toISOString(), '2026-11-26T06:28:47.000Z');
    assert.deepEqual(s.snapshots, ['d/snap 2', 'other/snap 3']);
  });

  it('reports writable subvolumes and received UUIDs', () => {
    const s = parseSubvolumeShow(
      SHOW.replace('\treadonly', '\t-').replace('Received UUID: \t\t-', 'Received UUID: \t\tabc-1'),
    );
    assert.equal(s.readOnly, false);
    assert.equal(s.receivedUuid, 'abc-1');
  });

  it('parses time zones', () => {
    assert.equal(
      parseShowTime('2024-01-02 03:04:05 +0130')?.toISOString(),
      '2024-01-02T01:34:05.000Z',
    );
    assert.equal(parseShowTime('-'), undefined);
  });
});
