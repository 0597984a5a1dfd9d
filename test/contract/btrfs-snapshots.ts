/**
 * Two real snapshots on a loop-mounted btrfs and their `btrfs send` streams
 * (a full one of `a`, an incremental of `b` from `a`), for the store contract
 * runs against real stores.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { treeDigest } from '../fixtures/tree-digest.js';
import type { ContractSnapshot } from './store-contract.js';

/** The source filesystem and its two known snapshots. */
export interface BtrfsSnapshots {
  readonly fs: BtrfsFs;
  /** Directory holding `a` and `b`. */
  readonly dir: string;
  readonly full: ContractSnapshot;
  readonly incremental: ContractSnapshot;
  /** Tree digest of the source snapshot of `snap`. */
  digest(snap: ContractSnapshot): Promise<string>;
}

/** Makes the filesystem (`size` bytes) and snapshots; `bigMiB` sizes the big file of `a`. */
export async function btrfsSnapshots(opts: { bigMiB?: number } = {}): Promise<BtrfsSnapshots> {
  const fs = await createBtrfs({ size: 512 << 20, label: 'contract source' });
  const live = await subvolume(join(fs.mnt, 'live'));
  const dir = join(fs.mnt, 'snaps');
  await mkdir(dir);
  await makeTree(live, 0, { bigMiB: opts.bigMiB ?? 1 });
  await snapshot(live, join(dir, 'a'));
  await makeTree(live, 1, { bigMiB: opts.bigMiB ?? 1 });
  await snapshot(live, join(dir, 'b'));
  const store = new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
  const view = await store.view('source');
  await store.close();
  const a = view.volumes.find((v) => v.path === 'a')!;
  const b = view.volumes.find((v) => v.path === 'b')!;
  const send = async (args: string[]) =>
    Buffer.from((await execa('btrfs', ['send', '-q', ...args], { encoding: 'buffer' })).stdout);
  return {
    fs,
    dir,
    full: { volume: a, from: null, bytes: await send([join(dir, 'a')]) },
    incremental: {
      volume: b,
      from: a,
      bytes: await send(['-p', join(dir, 'a'), join(dir, 'b')]),
    },
    digest: (snap) => treeDigest(join(dir, snap.volume.path)),
  };
}
