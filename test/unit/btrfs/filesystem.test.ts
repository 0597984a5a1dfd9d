import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFilesystemShow, parseFilesystemUsage } from '../../../src/btrfs/filesystem.js';

describe('parseFilesystemShow', () => {
  it('reads label, uuid, bytes used and devices', () => {
    const text = `Label: 'my label'  uuid: d1b78530-d0d1-4280-8216-27668336e8b9
\tTotal devices 2 FS bytes used 212992
\tdevid    1 size 314572800 used 92274688 path /dev/loop0
\tdevid    2 size 314572800 used 0 path /dev/loop 1

Label: none  uuid: 11111111-d0d1-4280-8216-27668336e8b9
\tTotal devices 1 FS bytes used 5
\tdevid    1 size 10 used 1 path /dev/sdb
`;
    const [a, b] = parseFilesystemShow(text);
    assert.equal(a?.label, 'my label');
    assert.equal(a?.uuid, 'd1b78530-d0d1-4280-8216-27668336e8b9');
    assert.equal(a?.bytesUsed, 212992);
    assert.deepEqual(a?.devices[1], { devid: 2, size: 314572800, used: 0, path: '/dev/loop 1' });
    assert.equal(b?.label, undefined);
    assert.equal(b?.devices.length, 1);
  });
});

describe('parseFilesystemUsage', () => {
  it('reads the overall section in bytes', () => {
    const text = `Overall:
    Device size:\t\t         314572800
    Device allocated:\t\t          92274688
    Device unallocated:\t\t         222298112
    Device missing:\t\t                 0
    Used:\t\t\t            425984
    Free (estimated):\t\t         230686720\t(min: 119537664)
    Data ratio:\t\t\t              1.00
    Metadata ratio:\t\t              2.00
`;
    assert.deepEqual(parseFilesystemUsage(text), {
      deviceSize: 314572800,
      deviceAllocated: 92274688,
      deviceUnallocated: 222298112,
      used: 425984,
      free: 230686720,
      dataRatio: 1,
      metadataRatio: 2,
    });
  });
});
