import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMountinfo, unescapeMountinfo } from '../../../src/checksumdir/mount-points.js';

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
  assert.equal(unescapeMountinfo(Buffer.from('a\\012b\\x')).toString(), 'a\nb\\x');
});
