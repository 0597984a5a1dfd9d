/**
 * Contract cases for a store that writes into a btrfs directory of a "remote"
 * filesystem this test can also read directly (the SSH store, through sshd or
 * in-process): one fresh `case-<n>` directory per case, the previous case's
 * subvolumes removed first (the server refuses a second subvolume with a UUID
 * already on the filesystem).
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Store } from '../../src/stores/store.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { treeDigest } from '../fixtures/tree-digest.js';
import type { BtrfsSnapshots } from './btrfs-snapshots.js';
import type { ContractFixture } from './store-contract.js';

/** Deletes every subvolume directly in `dir` (read-only ones too). */
export async function removeSubvolumes(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if ((await stat(join(dir, name))).ino === 256) {
      await execa('btrfs', ['property', 'set', '-f', join(dir, name), 'ro', 'false']);
      await execa('btrfs', ['subvolume', 'delete', join(dir, name)]);
    }
  }
}

/**
 * The `makeStore` of `describeStoreContract` for stores `open(dir)` makes over
 * a directory of `fixtures().remote`, with `fixtures().src` as the snapshots.
 */
export function remoteBtrfsCases(
  open: (dir: string) => Store,
  fixtures: () => { remote: BtrfsFs; src: BtrfsSnapshots },
): () => Promise<ContractFixture> {
  let n = 0;
  return async () => {
    const { remote, src } = fixtures();
    if (n > 0) await removeSubvolumes(join(remote.mnt, `case-${n - 1}`));
    const dir = join(remote.mnt, `case-${n++}`);
    await mkdir(dir);
    const other = open(dir);
    return {
      store: open(dir),
      full: src.full,
      incremental: src.incremental,
      expectedContent: (s) => src.digest(s),
      storedContent: (s) => treeDigest(join(dir, s.volume.path)),
      other: () => other,
    };
  };
}
