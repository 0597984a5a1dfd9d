/**
 * Lists the subvolumes of a btrfs filesystem below a directory, with UUIDs,
 * generations, creation time and read-only flag, using a fixed number of
 * `btrfs` processes whatever the number of subvolumes: `subvolume list -a`
 * (ids, generations, UUIDs, paths), `list -r` (read-only ids; only where
 * `access(2)` cannot tell them), `list -s` (creation time of snapshots; left
 * out when not asked for), and optionally one `inspect-internal dump-tree -t
 * root` for the transids `list` does not show. Each `btrfs subvolume list`
 * walks the whole filesystem, so {@link listFilesystem} hands out the whole
 * filesystem's subvolumes from the same run as well.
 */
import { accessSync, constants, lstatSync } from 'node:fs';
import { relative } from 'node:path';
import { runBtrfs } from './exec.js';
import { isWithin, readMountInfo, requireBtrfs, writableWithoutMountsBelow } from './mountinfo.js';
import { readRootItems } from './root-tree.js';
import { warn } from '../log.js';

/** One subvolume as {@link listSubvolumes} reports it. */
export interface SubvolumeInfo {
  /** Subvolume (root) id. */
  readonly id: number;
  /** Id of the subvolume that contains this one (`top level`). */
  readonly topLevel: number;
  /** Path from the filesystem's top level (subvolume 5), `/`-separated, no leading slash. */
  readonly fsPath: string;
  /** Absolute path through the mount the listing was made from. */
  readonly absPath: string;
  /** Path relative to the directory given to {@link listSubvolumes}. */
  readonly path: string;
  /** The subvolume's own UUID. */
  readonly uuid: string | undefined;
  /** UUID of the subvolume this one was snapshotted from; undefined when none. */
  readonly parentUuid: string | undefined;
  /** UUID set by `btrfs receive` (the sender's UUID); undefined when not received. */
  readonly receivedUuid: string | undefined;
  /** Root item generation (`gen`): last transaction that updated the root item. */
  readonly generation: number;
  /** Generation when the subvolume was created (`cgen`, otransid). */
  readonly otransid: number;
  /** Creation time; known for snapshots only (`btrfs subvolume list -s`). */
  readonly otime: Date | undefined;
  /** True when the subvolume is read-only. */
  readonly readOnly: boolean;
  /** Last transaction that changed the contents; only with `transids: true`. */
  readonly ctransid?: number;
  /** Sender's ctransid of a received subvolume (0 if none); only with `transids: true`. */
  readonly stransid?: number;
  /** Transaction of the receive (0 if none); only with `transids: true`. */
  readonly rtransid?: number;
}

/** Options of {@link listSubvolumes}. */
export interface ListSubvolumesOptions {
  /** Also fill `ctransid`/`stransid`/`rtransid` by reading the root tree (syncs the filesystem first). Default false. */
  transids?: boolean;
  /** Fill `otime` (one more `btrfs subvolume list -s`). Default true. */
  otime?: boolean;
  /** Cancels the listing. */
  signal?: AbortSignal;
}

/** One parsed line of `btrfs subvolume list` (whatever columns were asked for). */
export interface SubvolumeListLine {
  id: number;
  /** Path as printed, with a leading `<FS_TREE>/` removed. */
  path: string;
  gen?: number;
  cgen?: number;
  topLevel?: number;
  parentUuid?: string | undefined;
  receivedUuid?: string | undefined;
  uuid?: string | undefined;
  /** `otime` text as printed (`YYYY-MM-DD HH:MM:SS`, local time of the btrfs process). */
  otime?: string;
}

const LINE_START = /^ID \d+ /;

/**
 * Parses the output of `btrfs subvolume list` (btrfs-progs 6.x, any of the
 * `-a -g -c -u -q -R -s` columns). The path is everything after the first
 * ` path `, so spaces survive; a line that does not start with `ID <n> ` continues
 * the previous path (a file name holding a newline). `-` UUIDs become undefined.
 */
export function parseSubvolumeList(text: string): SubvolumeListLine[] {
  const out: SubvolumeListLine[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    if (!LINE_START.test(line)) {
      const prev = out.at(-1);
      if (prev) prev.path += '\n' + line;
      continue;
    }
    const at = line.indexOf(' path ');
    const head = at < 0 ? line : line.slice(0, at);
    let path = at < 0 ? '' : line.slice(at + ' path '.length);
    if (path.startsWith('<FS_TREE>/')) path = path.slice('<FS_TREE>/'.length);
    const num = (re: RegExp) => {
      const m = re.exec(head);
      return m?.[1] === undefined ? undefined : Number(m[1]);
    };
    const uuid = (re: RegExp) => {
      const m = re.exec(head);
      if (!m) return null;
      return m[1] === '-' ? undefined : m[1];
    };
    const entry: SubvolumeListLine = { id: num(/^ID (\d+)/) ?? 0, path };
    const gen = num(/ gen (\d+)/);
    if (gen !== undefined) entry.gen = gen;
    const cgen = num(/ cgen (\d+)/);
    if (cgen !== undefined) entry.cgen = cgen;
    const top = num(/ top level (\d+)/);
    if (top !== undefined) entry.topLevel = top;
    const pu = uuid(/ parent_uuid (\S+)/);
    if (pu !== null) entry.parentUuid = pu;
    const ru = uuid(/ received_uuid (\S+)/);
    if (ru !== null) entry.receivedUuid = ru;
    const u = uuid(/ uuid (\S+)/);
    if (u !== null) entry.uuid = u;
    const ot = / otime (\S+ \S+)/.exec(head);
    if (ot?.[1] !== undefined) entry.otime = ot[1];
    out.push(entry);
  }
  return out;
}

/** Converts `YYYY-MM-DD HH:MM:SS` printed in UTC to a Date; undefined when malformed. */
export function parseUtcTime(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const d = new Date(`${m[1]}T${m[2]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * Lists every subvolume of the filesystem holding `dir` whose path lies strictly
 * below `dir` (at any depth), sorted by path. `dir` may be any directory on
 * btrfs, mounted at the top level or through a `subvol=` mount. Spawns at
 * most three `btrfs` processes (see {@link listFilesystem}; one less with
 * `otime: false`, one more with `transids`), independent of the number of
 * subvolumes. Requires root (btrfs tree search).
 */
export async function listSubvolumes(
  dir: string,
  opts: ListSubvolumesOptions = {},
): Promise<SubvolumeInfo[]> {
  return (await listFilesystem(dir, opts)).below;
}

/** What {@link listFilesystem} found. */
export interface FilesystemListing {
  /** What {@link listSubvolumes} returns. */
  readonly below: SubvolumeInfo[];
  /** What {@link listFilesystemSubvolumes} returns, from the same listing. */
  readonly all: FilesystemSubvolume[];
}

/**
 * {@link listSubvolumes} and {@link listFilesystemSubvolumes} of `dir` from one
 * set of `btrfs` processes (`subvolume list -a` shows the whole filesystem).
 * Where `access(2)` can tell read-only subvolumes (see
 * {@link writableWithoutMountsBelow}), it does, instead of a second
 * `btrfs subvolume list -r`: one `btrfs` process with `otime: false`.
 */
export async function listFilesystem(
  dir: string,
  opts: ListSubvolumesOptions = {},
): Promise<FilesystemListing> {
  const { realPath, mount } = await requireBtrfs(dir);
  const signal = opts.signal ? { signal: opts.signal } : {};
  const utc = { env: { TZ: 'UTC' }, ...signal };
  const byAccess = writableWithoutMountsBelow(await readMountInfo(), mount, realPath);
  const listReadOnly = () => runBtrfs(['subvolume', 'list', '-a', '-r', realPath], signal);
  const [full, ro, snaps] = await Promise.all([
    runBtrfs(['subvolume', 'list', '-a', '-g', '-c', '-u', '-q', '-R', realPath], signal),
    byAccess ? undefined : listReadOnly(),
    (opts.otime ?? true)
      ? runBtrfs(['subvolume', 'list', '-a', '-s', realPath], utc)
      : { stdout: '' },
  ]);
  const lines = parseSubvolumeList(full.stdout);
  const otimes = new Map(parseSubvolumeList(snaps.stdout).map((l) => [l.id, l.otime]));
  let roots: Map<number, { ctransid: number; stransid: number; rtransid: number }> | undefined;
  if (opts.transids) {
    try {
      await runBtrfs(['filesystem', 'sync', realPath], signal);
      roots = await readRootItems(mount.source, opts.signal);
    } catch (err) {
      opts.signal?.throwIfAborted();
      warn('BTRFS_TRANSIDS', `cannot read subvolume transids of ${mount.source}`, {
        error: String(err),
      });
    }
  }
  // Paths from `list -a` are relative to the top level; the mount shows `mount.root` at `mountPoint`.
  const mountRoot = mount.root.replace(/^\/+|\/+$/g, '');
  const mountRootAbs = '/' + mountRoot;
  const dirInFs = '/' + [mountRoot, relative(mount.mountPoint, realPath)].filter(Boolean).join('/');
  const result: SubvolumeInfo[] = [];
  for (const line of lines) {
    if (line.path === '') continue;
    const inFs = '/' + line.path;
    if (inFs === dirInFs || !isWithin(dirInFs, inFs) || !isWithin(mountRootAbs, inFs)) continue;
    const fromMount = relative(mountRootAbs, inFs);
    const absPath = mount.mountPoint === '/' ? '/' + fromMount : `${mount.mountPoint}/${fromMount}`;
    const r = roots?.get(line.id);
    result.push({
      id: line.id,
      topLevel: line.topLevel ?? 0,
      fsPath: line.path,
      absPath,
      path: relative(dirInFs, inFs),
      uuid: line.uuid,
      parentUuid: line.parentUuid,
      receivedUuid: line.receivedUuid,
      generation: line.gen ?? 0,
      otransid: line.cgen ?? 0,
      otime: parseUtcTime(otimes.get(line.id)),
      readOnly: false,
      ...(r ? { ctransid: r.ctransid, stransid: r.stransid, rtransid: r.rtransid } : {}),
    });
  }
  const kept = crossChecked(result);
  const readOnly =
    (ro ? undefined : readOnlyByAccess(kept)) ?? idsOf((ro ?? (await listReadOnly())).stdout);
  const below = kept
    .map((e) => ({ ...e, readOnly: readOnly.has(e.id) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { below, all: lines.map(filesystemSubvolume) };
}

/** The ids a `btrfs subvolume list` printed. */
function idsOf(text: string): Set<number> {
  return new Set(parseSubvolumeList(text).map((l) => l.id));
}

/**
 * The ids of the read-only subvolumes among `subs`, by `access(W_OK)` on each
 * (EROFS: read-only; see {@link writableWithoutMountsBelow} for when that
 * holds); undefined when any answer is something else, to ask btrfs instead.
 */
function readOnlyByAccess(subs: readonly SubvolumeInfo[]): Set<number> | undefined {
  // Synchronous, as crossChecked's lstat: microseconds each.
  const answers = subs.map((s) => {
    try {
      accessSync(s.absPath, constants.W_OK);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EROFS' ? true : undefined;
    }
  });
  if (answers.includes(undefined)) return undefined;
  return new Set(subs.filter((_, i) => answers[i]).map((s) => s.id));
}

/** Inode number of every btrfs subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INO = 256;

/**
 * `btrfs subvolume list` prints names as they are, newlines included, so a
 * subvolume named "x\nID 999 … path y" reads as two lines. Keeps only entries
 * whose path is listed once and is, on disk, a subvolume's root directory;
 * warns about the rest.
 */
function crossChecked(entries: SubvolumeInfo[]): SubvolumeInfo[] {
  const count = new Map<string, number>();
  for (const e of entries) count.set(e.path, (count.get(e.path) ?? 0) + 1);
  // Synchronous: one lstat is microseconds, a promise per subvolume costs more than the call.
  const real = entries.map((e) => {
    try {
      const st = lstatSync(e.absPath);
      return st.isDirectory() && st.ino === SUBVOLUME_ROOT_INO;
    } catch {
      return false;
    }
  });
  const ok = (e: SubvolumeInfo, i: number) => real[i] === true && count.get(e.path) === 1;
  const kept = entries.filter(ok);
  if (kept.length < entries.length) {
    const dropped = entries.filter((e, i) => !ok(e, i)).map((e) => JSON.stringify(e.path));
    warn(
      'SUBVOLUME_LIST_MISMATCH',
      `ignoring ${dropped.length} listed subvolume(s) that are not where the listing says (a name with a newline?): ${dropped.slice(0, 5).join(', ')}`,
    );
  }
  return kept;
}

/** One subvolume of a whole filesystem, as {@link listFilesystemSubvolumes} reports it. */
export interface FilesystemSubvolume {
  readonly id: number;
  /** Path from the filesystem's top level, as printed (untrusted names: for messages only). */
  readonly fsPath: string;
  readonly uuid: string | undefined;
  readonly receivedUuid: string | undefined;
}

/**
 * Every subvolume of the filesystem holding `dir`, wherever it lies and
 * whether or not it is reachable from the mount (one `btrfs subvolume list -a
 * -u -R`): what `btrfs receive` searches when it looks a UUID up. Requires root.
 */
export async function listFilesystemSubvolumes(
  dir: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FilesystemSubvolume[]> {
  const { stdout } = await runBtrfs(
    ['subvolume', 'list', '-a', '-u', '-R', dir],
    opts.signal ? { signal: opts.signal } : {},
  );
  return parseSubvolumeList(stdout).map(filesystemSubvolume);
}

function filesystemSubvolume(l: SubvolumeListLine): FilesystemSubvolume {
  return { id: l.id, fsPath: l.path, uuid: l.uuid, receivedUuid: l.receivedUuid };
}
