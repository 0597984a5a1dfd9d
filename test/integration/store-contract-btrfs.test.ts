/**
 * The store contract against the local btrfs store on loop-mounted btrfs.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { btrfsSnapshots } from '../contract/btrfs-snapshots.js';
import type { BtrfsSnapshots } from '../contract/btrfs-snapshots.js';
import { describeStoreContract } from '../contract/store-contract.js';
import { createBtrfs } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

let src: BtrfsSnapshots | undefined;
let dest: BtrfsFs | undefined;
let n = 0;
if (!skip) {
  before(async () => {
    src = await btrfsSnapshots();
    dest = await createBtrfs({ size: 512 << 20, label: 'contract dest' });
  });
  after(async () => {
    await src?.fs.cleanup();
    await dest?.cleanup();
  });
}

const open = (dir: string) => new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);

describeStoreContract(
  'btrfs',
  async () => {
    const dir = join(dest!.mnt, `case-${n++}`);
    await mkdir(dir);
    return {
      store: open(dir),
      full: src!.full,
      incremental: src!.incremental,
      trustedSource: true,
      expectedContent: (s) => src!.digest(s),
      storedContent: (s) => treeDigest(join(dir, s.volume.path)),
      other: () => open(dir),
    };
  },
  { skip },
);
