import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMountinfo } from '../../../src/checksumdir/mount-points.js';

test('mount targets are field 5, octal escapes decoded', () => {
  const text = Buffer.from(
    [
      '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '40 22 0:35 / /mnt/with\\040space rw - tmpfs tmpfs rw',
      '41 22 0:36 /sub /mnt/back\\134slash rw - btrfs /dev/loop0 rw,subvol=/sub',
      '',
    ].join('\n'),
  );
  const mounts = parseMountinfo(text);
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
  assert.ok(parseMountinfo(raw).has(nonUtf8), 'non-UTF-8 target bytes survive');
});
