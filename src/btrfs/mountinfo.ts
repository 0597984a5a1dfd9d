/**
 * Mount table facts from `/proc/self/mountinfo`, read without spawning a
 * process: which mount holds a path, its filesystem type, (for btrfs) which
 * subvolume of the filesystem is mounted there, and the set of mount points
 * (checksumdir marks them). One parser, {@link parseMountInfo}, serves all.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { NotBtrfsError } from '../errors.js';

/** One line of `/proc/self/mountinfo`, octal escapes (`\040`) decoded. */
export interface MountInfo {
  /** Mount id (first field). */
  readonly id: number;
  /** `major:minor` of the filesystem. */
  readonly dev: string;
  /** Path inside the filesystem that is mounted here (for btrfs: the subvolume path, `/` = top level). */
  readonly root: string;
  /** Absolute mount point. */
  readonly mountPoint: string;
  /** Per-mount options, e.g. `rw,relatime` (a bind mount can be `ro` on a read-write filesystem). */
  readonly options: string;
  /** Filesystem type, e.g. `btrfs`. */
  readonly fsType: string;
  /** Mount source, e.g. `/dev/loop0`. */
  readonly source: string;
  /** Per-superblock options, e.g. `rw,subvolid=5,subvol=/`. */
  readonly superOptions: string;
}

/** Decodes the octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash) of mountinfo fields. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses the text of `/proc/self/mountinfo`. Malformed lines are skipped. */
export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 4) continue;
    const [id, , dev, root, mountPoint, options] = fields;
    if (id === undefined || dev === undefined || root === undefined || mountPoint === undefined) {
      continue;
    }
    mounts.push({
      id: Number(id),
      dev,
      root: unescapeMountField(root),
      mountPoint: unescapeMountField(mountPoint),
      options: options ?? '',
      fsType: fields[sep + 1] ?? '',
      source: unescapeMountField(fields[sep + 2] ?? ''),
      superOptions: fields[sep + 3] ?? '',
    });
  }
  return mounts;
}

/** Reads and parses `/proc/self/mountinfo`. */
export async function readMountInfo(): Promise<MountInfo[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/**
 * The set of mount points as util-linux `mountpoint` sees them: every target
 * listed in the mount table. A directory is a mount point when its canonical
 * path is one of them; a different device number alone (a nested btrfs
 * subvolume) does not make one. Membership is tested on raw path bytes.
 */
export interface MountPoints {
  /** True when `canonicalPath` (absolute, no symlinks, no trailing slash) is a mount target. */
  has(canonicalPath: Buffer): boolean;
  /** Number of distinct targets. */
  readonly size: number;
}

/**
 * The {@link MountPoints} of a mountinfo file's bytes, parsed by
 * {@link parseMountInfo}. Decoded as latin1 so that every path byte survives,
 * whatever the names' encoding.
 */
export function parseMountPoints(bytes: Buffer): MountPoints {
  const targets = new Set(parseMountInfo(bytes.toString('latin1')).map((m) => m.mountPoint));
  return {
    has: (canonicalPath) => targets.has(canonicalPath.toString('latin1')),
    size: targets.size,
  };
}

/**
 * Reads the current mount points from `/proc/self/mountinfo` (or `file`). Read
 * once per run: mounts made or removed later are not seen.
 */
export async function readMountPoints(file = '/proc/self/mountinfo'): Promise<MountPoints> {
  return parseMountPoints(await readFile(file));
}

/**
 * The mount that holds `absPath` (already resolved with realpath): the one with
 * the longest mount point that is a prefix of it; the later one wins among
 * mounts stacked on the same point (it hides the earlier).
 */
export function mountOf(mounts: readonly MountInfo[], absPath: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    if (!isWithin(m.mountPoint, absPath)) continue;
    if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
  }
  return best;
}

/** True when `path` is `dir` or below it (both absolute, normalized). */
export function isWithin(dir: string, path: string): boolean {
  if (dir === '/') return path.startsWith('/');
  return path === dir || path.startsWith(dir + '/');
}

/**
 * True when everything below `dir` (absolute, resolved) is reached through
 * `mount` alone, no mount point lying below `dir`, and that mount is
 * read-write both per mount and per superblock: then `access(W_OK)` on a
 * path below `dir` fails with EROFS for one reason only, a read-only btrfs
 * subvolume (btrfs answers that before any permission check).
 */
export function writableWithoutMountsBelow(
  mounts: readonly MountInfo[],
  mount: MountInfo,
  dir: string,
): boolean {
  const rw = (opts: string) => !opts.split(',').includes('ro');
  if (!rw(mount.options) || !rw(mount.superOptions)) return false;
  return !mounts.some((m) => m.mountPoint !== dir && isWithin(dir, m.mountPoint));
}

/** Resolves `path` and returns the mount holding it. Rejects when `path` does not exist. */
export async function findMount(path: string): Promise<{ realPath: string; mount: MountInfo }> {
  const realPath = await realpath(path);
  const mount = mountOf(await readMountInfo(), realPath);
  if (!mount) throw new NotBtrfsError(`no mount found for ${realPath}`);
  return { realPath, mount };
}

/** True when `path` exists and lies on a btrfs filesystem. Never spawns a process. */
export async function isBtrfs(path: string): Promise<boolean> {
  try {
    return (await findMount(path)).mount.fsType === 'btrfs';
  } catch {
    return false;
  }
}

/**
 * True when `path` is the root directory of a btrfs subvolume (inode 256 on a
 * btrfs filesystem, the fixed inode number of every subvolume root). Never spawns a process.
 */
export async function isSubvolume(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    return st.isDirectory() && st.ino === 256 && (await isBtrfs(path));
  } catch {
    return false;
  }
}

/**
 * Requires `path` to be on btrfs; resolves to its real path and mount.
 * Rejects with {@link NotBtrfsError} otherwise.
 */
export async function requireBtrfs(path: string): Promise<{ realPath: string; mount: MountInfo }> {
  const found = await findMount(path).catch((err: unknown) => {
    throw new NotBtrfsError(`${path}: ${(err as Error).message}`, { cause: err });
  });
  if (found.mount.fsType !== 'btrfs') {
    throw new NotBtrfsError(
      `${path} is not on a btrfs filesystem (it is on ${found.mount.fsType} at ${found.mount.mountPoint})`,
    );
  }
  return found;
}
