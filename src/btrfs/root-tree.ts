/**
 * Transids of every subvolume from one `btrfs inspect-internal dump-tree -t
 * root` of the filesystem's device: the `ctransid` (last content change) and
 * `stransid` (sender's ctransid of a received subvolume) that `btrfs subvolume
 * list` does not print. Reads the last committed state: sync first.
 */
import { runBtrfs } from './exec.js';

/** Transids of one subvolume root item. */
export interface RootTransids {
  ctransid: number;
  otransid: number;
  stransid: number;
  rtransid: number;
}

/**
 * Parses `btrfs inspect-internal dump-tree -t root` output into a map from
 * subvolume id (5 and ids ≥ 256) to its transids. Items without a
 * `ctransid` line (old root item format) are left out.
 */
export function parseRootTree(text: string): Map<number, RootTransids> {
  const out = new Map<number, RootTransids>();
  let current: number | undefined;
  for (const line of text.split('\n')) {
    const key = /^\s*item \d+ key \((\d+|FS_TREE) ROOT_ITEM \d+\)/.exec(line);
    if (key?.[1] !== undefined) {
      const id = key[1] === 'FS_TREE' ? 5 : Number(key[1]);
      current = id === 5 || id >= 256 ? id : undefined;
      continue;
    }
    if (/^\s*item \d+ key /.test(line)) {
      current = undefined;
      continue;
    }
    if (current === undefined) continue;
    const t = /ctransid (\d+) otransid (\d+) stransid (\d+) rtransid (\d+)/.exec(line);
    if (t) {
      out.set(current, {
        ctransid: Number(t[1]),
        otransid: Number(t[2]),
        stransid: Number(t[3]),
        rtransid: Number(t[4]),
      });
    }
  }
  return out;
}

/** Reads the root tree of the btrfs filesystem on `device` (e.g. `/dev/loop0`). Requires root. */
export async function readRootItems(
  device: string,
  signal?: AbortSignal,
): Promise<Map<number, RootTransids>> {
  const { stdout } = await runBtrfs(
    ['inspect-internal', 'dump-tree', '-t', 'root', device],
    signal ? { signal } : {},
  );
  return parseRootTree(stdout);
}
