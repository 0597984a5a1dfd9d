import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRootTree } from '../../../src/btrfs/root-tree.js';

// Excerpt of `btrfs inspect-internal dump-tree -t root` (btrfs-progs 6.2).
const TEXT = `root tree
leaf 30752768 items 19 free space 12138 generation 9 owner ROOT_TREE
\titem 0 key (EXTENT_TREE ROOT_ITEM 0) itemoff 15844 itemsize 439
\t\tgeneration 9 root_dirid 0 bytenr 30736384 byte_limit 0 bytes_used 16384
\t\tctransid 0 otransid 0 stransid 0 rtransid 0
\titem 5 key (FS_TREE ROOT_ITEM 0) itemoff 13649 itemsize 439
\t\tctransid 8 otransid 0 stransid 0 rtransid 0
\titem 17 key (257 ROOT_BACKREF 5) itemoff 12413 itemsize 21
\t\troot backref key dirid 258 sequence 2 name sub
\titem 18 key (258 ROOT_ITEM 7) itemoff 11974 itemsize 439
\t\tgeneration 7 root_dirid 256 bytenr 30654464 byte_limit 0 bytes_used 16384
\t\tuuid d1e941fc-36a6-5643-94e3-fd83dc4daa6b
\t\tctransid 7 otransid 7 stransid 3 rtransid 9
`;

describe('parseRootTree', () => {
  it('reads transids of subvolume root items only', () => {
    const m = parseRootTree(TEXT);
    assert.deepEqual([...m.keys()], [5, 258]);
    assert.deepEqual(m.get(258), { ctransid: 7, otransid: 7, stransid: 3, rtransid: 9 });
  });
});
