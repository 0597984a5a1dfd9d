/**
 * tree-walk: a source stage emitting one object per directory entry below a
 * root directory (the root itself excluded), each with its `lstat` (bigint,
 * nanosecond times). Symlinks are never followed; mounted file systems are
 * entered, like `find` without `-xdev`.
 *
 * Buffering and backpressure: an object-mode Readable over an async generator;
 * the walk advances only when the consumer pulls. In memory at most: the names
 * of the directory being listed, `statConcurrency` pending lstat calls, the
 * stack of directories still to visit, and `highWaterMark` emitted entries.
 */
import { Readable } from 'node:stream';
import { lstat, readdir, realpath } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { UsageError } from '../errors.js';
import { warn } from '../log.js';
import { destroyOnAbort, sourceStage, streamDone } from '../streams/stage.js';
import type { SourceStage, StageOptions } from '../streams/stage.js';
import { readMountPoints } from '../btrfs/mountinfo.js';
import type { MountPoints } from '../btrfs/mountinfo.js';

/** One directory entry below the root. */
export interface WalkEntry {
  /** Path below the root as raw bytes, no leading `./` (find's `%P`). */
  relPath: Buffer;
  /** Canonical absolute path: the root's real path, `/`, `relPath`. */
  absPath: Buffer;
  /** `lstat` of the entry, with nanosecond times (`mtimeNs`). */
  stats: BigIntStats;
  /** A directory listed as a mount target in the mount table. */
  mountPoint: boolean;
  /** Its device differs from its parent directory's (a mount or a btrfs subvolume). */
  crossesDevice: boolean;
}

/** Why part of the tree could not be walked. */
export interface WalkProblem {
  /** `'list'`: a directory could not be read; `'stat'`: an entry vanished or could not be lstat'ed. */
  op: 'list' | 'stat';
  relPath: Buffer;
  error: NodeJS.ErrnoException;
}

/** Options of {@link treeWalk}. */
export interface TreeWalkOptions extends StageOptions {
  /** The directory to walk; symlinks in it are resolved once, up front. */
  root: string | Buffer;
  /** Mount table used to flag mount points. Default: read `/proc/self/mountinfo` at start. */
  mountPoints?: MountPoints;
  /** lstat calls in flight. Default 64. */
  statConcurrency?: number;
  /** Entries buffered ahead of the consumer. Default 256. */
  highWaterMark?: number;
  /**
   * Called for a directory that cannot be listed or an entry that vanished;
   * the walk goes on (as find does). Default: a `warn('WALK_ERROR', …)`.
   */
  onProblem?: (problem: WalkProblem) => void;
}

/** What a finished walk saw. */
export interface TreeWalkResult {
  /** Entries emitted. */
  entries: number;
  /** Directories listed (the root included). */
  directories: number;
  /** Problems reported through `onProblem`. */
  problems: number;
}

const SLASH = Buffer.from('/');

function isErrno(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`${name} must be a positive integer`);
  return value;
}

/**
 * Walks `root` depth-first and emits a {@link WalkEntry} per entry, in no
 * particular order. The stream ends after the whole tree was walked; it errors
 * only when the root itself cannot be resolved or on abort. `result` resolves
 * with the counts once the stream ended.
 */
export function treeWalk(opts: TreeWalkOptions): SourceStage<TreeWalkResult> {
  const statConcurrency = positiveInt(opts.statConcurrency, 64, 'statConcurrency');
  const highWaterMark = positiveInt(opts.highWaterMark, 256, 'highWaterMark');
  const onProblem =
    opts.onProblem ??
    ((p: WalkProblem) =>
      warn('WALK_ERROR', `${p.relPath.toString() || '.'}: ${p.error.message}`, {
        op: p.op,
        code: p.error.code,
      }));
  const counts: TreeWalkResult = { entries: 0, directories: 0, problems: 0 };
  const signal = opts.signal;

  const report = (problem: WalkProblem) => {
    counts.problems++;
    onProblem(problem);
  };

  async function* walk(): AsyncGenerator<WalkEntry> {
    signal?.throwIfAborted();
    const mounts = opts.mountPoints ?? (await readMountPoints());
    const rootAbs = await realpath(opts.root, { encoding: 'buffer' });
    const rootStat = await lstat(rootAbs, { bigint: true });
    if (!rootStat.isDirectory()) throw new UsageError(`${String(opts.root)} is not a directory`);
    const rootPrefix = rootAbs.length === 1 ? rootAbs : Buffer.concat([rootAbs, SLASH]);
    const stack: { rel: Buffer | null; dev: bigint }[] = [{ rel: null, dev: rootStat.dev }];

    for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
      const dirAbs = dir.rel === null ? rootAbs : Buffer.concat([rootPrefix, dir.rel]);
      let names: Buffer[];
      try {
        names = await readdir(dirAbs, { encoding: 'buffer' });
      } catch (err) {
        if (!isErrno(err)) throw err;
        report({ op: 'list', relPath: dir.rel ?? Buffer.alloc(0), error: err });
        continue;
      }
      counts.directories++;
      const relPrefix = dir.rel === null ? null : Buffer.concat([dir.rel, SLASH]);
      for (let i = 0; i < names.length; i += statConcurrency) {
        signal?.throwIfAborted();
        const batch = names.slice(i, i + statConcurrency).map(async (name) => {
          const relPath = relPrefix === null ? name : Buffer.concat([relPrefix, name]);
          const absPath = Buffer.concat([rootPrefix, relPath]);
          try {
            return { relPath, absPath, stats: await lstat(absPath, { bigint: true }) };
          } catch (err) {
            if (!isErrno(err)) throw err;
            report({ op: 'stat', relPath, error: err });
            return undefined;
          }
        });
        for (const done of await Promise.all(batch)) {
          if (done === undefined) continue;
          const isDir = done.stats.isDirectory();
          const entry: WalkEntry = {
            ...done,
            mountPoint: isDir && mounts.has(done.absPath),
            crossesDevice: done.stats.dev !== dir.dev,
          };
          if (isDir) stack.push({ rel: done.relPath, dev: done.stats.dev });
          counts.entries++;
          yield entry;
        }
      }
    }
  }

  const stream = Readable.from(walk(), { objectMode: true, highWaterMark });
  destroyOnAbort(stream, signal, 'tree walk aborted');
  return sourceStage(
    'tree-walk',
    stream,
    streamDone(stream).then(() => counts),
  );
}
