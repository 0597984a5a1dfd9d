/**
 * The set of mount points as util-linux `mountpoint` sees them: every target
 * listed in `/proc/self/mountinfo`. A directory is a mount point when its
 * canonical path is one of them; a different device number alone (a nested
 * btrfs subvolume) does not make one.
 */
import { readFile } from 'node:fs/promises';
import { parseMountInfo } from '../btrfs/mountinfo.js';

/** Mount targets as raw path bytes, with membership tested on canonical paths. */
export interface MountPoints {
  /** True when `canonicalPath` (absolute, no symlinks, no trailing slash) is a mount target. */
  has(canonicalPath: Buffer): boolean;
  /** Number of distinct targets. */
  readonly size: number;
}

/**
 * Parses the bytes of a mountinfo file into its set of mount targets. Decoded
 * as latin1 so that every path byte survives, whatever the names' encoding.
 */
export function parseMountinfo(text: Buffer): MountPoints {
  const targets = new Set(parseMountInfo(text.toString('latin1')).map((m) => m.mountPoint));
  return {
    has: (canonicalPath) => targets.has(canonicalPath.toString('latin1')),
    size: targets.size,
  };
}

/**
 * Reads the current mount table from `/proc/self/mountinfo` (or `file`). Read
 * once per run: mounts made or removed during a walk are not seen.
 */
export async function readMountPoints(file = '/proc/self/mountinfo'): Promise<MountPoints> {
  return parseMountinfo(await readFile(file));
}
