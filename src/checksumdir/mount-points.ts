/**
 * The set of mount points as util-linux `mountpoint` sees them: every target
 * listed in `/proc/self/mountinfo`. A directory is a mount point when its
 * canonical path is one of them; a different device number alone (a nested
 * btrfs subvolume) does not make one.
 */
import { readFile } from 'node:fs/promises';

/** Mount targets as raw path bytes, with membership tested on canonical paths. */
export interface MountPoints {
  /** True when `canonicalPath` (absolute, no symlinks, no trailing slash) is a mount target. */
  has(canonicalPath: Buffer): boolean;
  /** Number of distinct targets. */
  readonly size: number;
}

/** Decodes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash …). */
export function unescapeMountinfo(field: Buffer): Buffer {
  if (!field.includes(0x5c)) return field;
  const out: number[] = [];
  for (let i = 0; i < field.length; i++) {
    const byte = field[i]!;
    const octal = field.toString('latin1', i + 1, i + 4);
    if (byte === 0x5c && /^[0-7]{3}$/.test(octal)) {
      out.push(parseInt(octal, 8));
      i += 3;
    } else {
      out.push(byte);
    }
  }
  return Buffer.from(out);
}

/** Parses the text of a mountinfo file into its set of mount targets. */
export function parseMountinfo(text: Buffer): MountPoints {
  const targets = new Set<string>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf(0x0a, start);
    if (end < 0) end = text.length;
    const line = text.subarray(start, end);
    start = end + 1;
    // Fields: id parent major:minor root mount-point options ...; none holds a raw space.
    let field = 0;
    let pos = 0;
    while (field < 4 && pos >= 0) {
      pos = line.indexOf(0x20, pos);
      if (pos >= 0) pos++;
      field++;
    }
    if (pos < 0) continue;
    let stop = line.indexOf(0x20, pos);
    if (stop < 0) stop = line.length;
    targets.add(unescapeMountinfo(line.subarray(pos, stop)).toString('latin1'));
  }
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
