import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isWithin,
  mountOf,
  parseMountInfo,
  parseMountPoints,
  writableWithoutMountsBelow,
} from '../../../src/btrfs/mountinfo.js';

const TEXT = `27 1 0:25 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
43 27 0:39 / /tmp/expmnt rw,relatime - btrfs /dev/loop0 rw,ssd,subvolid=5,subvol=/
44 27 0:39 /a\\040b /tmp/exp\\040mnt2 rw,relatime shared:5 master:2 - btrfs /dev/loop0 rw,ssd,subvolid=256,subvol=/a\\040b
`;

describe('parseMountInfo / mountOf', () => {
  it('decodes escapes and optional fields', () => {
    const m = parseMountInfo(TEXT);
    assert.equal(m.length, 3);
    assert.equal(m[2]?.root, '/a b');
    assert.equal(m[2]?.mountPoint, '/tmp/exp mnt2');
    assert.equal(m[2]?.fsType, 'btrfs');
    assert.equal(m[2]?.source, '/dev/loop0');
  });
  it('picks the longest mount point containing a path', () => {
    const m = parseMountInfo(TEXT);
    assert.equal(mountOf(m, '/tmp/exp mnt2/x')?.id, 44);
    assert.equal(mountOf(m, '/tmp/expmnt')?.id, 43);
    assert.equal(mountOf(m, '/tmp/expmnt2')?.id, 27);
    assert.equal(isWithin('/a', '/ab'), false);
    assert.equal(isWithin('/', '/ab'), true);
  });
});

describe('parseMountPoints', () => {
  it('keeps the mount targets (field 5), octal escapes decoded, raw bytes intact', () => {
    const text = Buffer.from(
      [
        '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw',
        '40 22 0:35 / /mnt/with\\040space rw - tmpfs tmpfs rw',
        '41 22 0:36 /sub /mnt/back\\134slash rw - btrfs /dev/loop0 rw,subvol=/sub',
        '',
      ].join('\n'),
    );
    const mounts = parseMountPoints(text);
    assert.equal(mounts.size, 3);
    assert.ok(mounts.has(Buffer.from('/')));
    assert.ok(mounts.has(Buffer.from('/mnt/with space')));
    assert.ok(mounts.has(Buffer.from('/mnt/back\\slash')));
    assert.ok(!mounts.has(Buffer.from('/mnt')));
    const nonUtf8 = Buffer.concat([Buffer.from('/mnt/'), Buffer.from([0xff, 0xfe])]);
    const raw = Buffer.concat([
      Buffer.from('42 22 0:37 / '),
      nonUtf8,
      Buffer.from(' rw - tmpfs t rw\n'),
    ]);
    assert.ok(parseMountPoints(raw).has(nonUtf8), 'non-UTF-8 target bytes survive');
  });
});

describe('writableWithoutMountsBelow', () => {
  const mounts = parseMountInfo(`27 1 0:25 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
43 27 0:39 / /mnt/a rw,relatime - btrfs /dev/loop0 rw,ssd,subvolid=5,subvol=/
44 27 0:39 /x /mnt/ro-bind ro,relatime - btrfs /dev/loop0 rw,ssd,subvolid=5,subvol=/
45 27 0:40 / /mnt/ro-fs rw,relatime - btrfs /dev/loop1 ro,ssd,subvolid=5,subvol=/
46 43 0:41 / /mnt/a/snaps/s1/tmp rw - tmpfs tmpfs rw
`);
  const at = (id: number) => mounts.find((m) => m.id === id)!;
  it('true for a read-write mount with nothing mounted below the directory', () => {
    assert.equal(writableWithoutMountsBelow(mounts, at(43), '/mnt/a/other'), true);
    assert.equal(writableWithoutMountsBelow(mounts, at(43), '/mnt/a/snaps/s1/tmp2'), true);
  });
  it('false for a read-only mount, per mount or per superblock', () => {
    assert.equal(at(44).options, 'ro,relatime');
    assert.equal(writableWithoutMountsBelow(mounts, at(44), '/mnt/ro-bind'), false);
    assert.equal(writableWithoutMountsBelow(mounts, at(45), '/mnt/ro-fs/d'), false);
  });
  it('false when a mount point lies below the directory', () => {
    assert.equal(writableWithoutMountsBelow(mounts, at(43), '/mnt/a/snaps'), false);
    assert.equal(writableWithoutMountsBelow(mounts, at(43), '/mnt/a'), false);
  });
});
