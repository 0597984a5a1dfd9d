/**
 * The marker of a subvolume being received in place (the fused path, see
 * `fused-transfer.ts`): `<dir>/.<name>.receiving` beside `<dir>/<name>`. It is
 * written (and made durable) before `btrfs receive` starts and removed only
 * after the received subvolume was checked: read-only, with the expected
 * received UUID (btrbk's rule of a complete receive) and the exact parent.
 * While it exists the subvolume is a partial: left out of listings, reported
 * by `listPartials`, removed by `deletePartials` and by the next receive of
 * the same snapshot. A marker without its subvolume (a run killed before
 * `btrfs receive` created it) is a partial too.
 *
 * The marker holds the expected UUID, for people reading it; nothing trusts it.
 */
import { constants } from 'node:fs';
import { open, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const PREFIX = '.';
/** Suffix of a receiving marker's name. */
export const RECEIVING_SUFFIX = '.receiving';

/** The marker path of the subvolume at `path`. */
export function markerPath(path: string): string {
  return join(dirname(path), `${PREFIX}${basename(path)}${RECEIVING_SUFFIX}`);
}

/** The subvolume name a directory entry marks, or undefined when it is no marker. */
export function markedName(entry: string): string | undefined {
  if (!entry.startsWith(PREFIX) || !entry.endsWith(RECEIVING_SUFFIX)) return undefined;
  const name = entry.slice(PREFIX.length, -RECEIVING_SUFFIX.length);
  return name === '' ? undefined : name;
}

/** Fsyncs directory `dir`, so a name created or removed in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Creates the marker of `path` (never following or replacing anything: EEXIST
 * when something is there) and makes it durable.
 */
export async function writeMarker(path: string, uuid: string): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const h = await open(markerPath(path), flags, 0o600);
  try {
    await h.writeFile(`receiving snapshot ${uuid}; a partial until this file is gone\n`);
    await h.sync();
  } finally {
    await h.close();
  }
  await syncDir(dirname(path));
}

/** Removes the marker of `path` durably; a missing marker is fine. */
export async function removeMarker(path: string): Promise<void> {
  await unlink(markerPath(path)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await syncDir(dirname(path));
}

/**
 * The paths (relative to `root`) every marker in the directories `dirs`
 * (relative to `root`, '.' for itself) marks; unreadable directories count as
 * holding none.
 */
export async function markedPaths(root: string, dirs: Iterable<string>): Promise<Set<string>> {
  const marked = new Set<string>();
  for (const dir of new Set(dirs)) {
    const entries = await readdir(join(root, dir)).catch(() => [] as string[]);
    for (const e of entries) {
      const name = markedName(e);
      if (name !== undefined) marked.add(dir === '.' ? name : join(dir, name));
    }
  }
  return marked;
}
