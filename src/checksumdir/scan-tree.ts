/**
 * Scans one directory into its checksumdir listings: tree-walk → file-hash →
 * listing-sink, wired with `pipeline`. Problems are warned about one by one and
 * counted, never skipped silently.
 */
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { warn } from '../log.js';
import { fileHash } from './file-hash.js';
import { treeWalk } from './tree-walk.js';
import type { WalkProblem } from './tree-walk.js';
import type { MountPoints } from '../btrfs/mountinfo.js';
import { listingSink } from './listing-sink.js';
import type { HashedWalkEntry } from './listing-sink.js';
import type { Listing } from './listing.js';
import { progressLine } from './progress-line.js';

/** Options of {@link scanTree}. */
export interface ScanTreeOptions {
  /** Directory to scan. */
  dir: string;
  /** Label of the progress line. Default: `dir`. */
  label?: string;
  /** Where progress goes; drawn only when it is a TTY. */
  progress?: Writable;
  /** Hashing worker threads. Default: the number of CPUs, at most 8. */
  concurrency?: number;
  /** Bytes per read. Default 1 MiB. */
  chunkSize?: number;
  /** Mount table. Default: `/proc/self/mountinfo`, read once. */
  mountPoints?: MountPoints;
  signal?: AbortSignal;
}

/** What was seen besides the listings. Paths are relative to the directory. */
export interface ScanCounts {
  /** Entries listed (mount points included, though left out of `NAME.ls`). */
  entries: number;
  /** Regular files hashed, and their bytes. */
  files: number;
  bytes: number;
  /** Mount points left out of `NAME.ls`. */
  mountPoints: string[];
  /** Unreadable: directories that could not be listed and files that could not be read. */
  unreadable: string[];
  /** Entries that disappeared (or stopped being regular files) between walk and hash. */
  vanished: string[];
  /** FIFOs, sockets and devices: listed in `NAME.ls`, not hashed. */
  special: string[];
}

/** The listings and counts of one scan. */
export interface ScanResult extends Listing {
  counts: ScanCounts;
}

const VANISHED = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EAGAIN', 'ENXIO']);

function display(relPath: Buffer): string {
  return relPath.length === 0 ? '.' : relPath.toString();
}

/**
 * Walks, hashes and lists `dir`. Resolves with sorted listings, byte-identical
 * to what the reference GNU pipeline prints for the same tree; files that
 * could not be read are missing from `files` exactly as sha256sum leaves them
 * out, and are named in `counts`. Rejects only when the directory itself cannot
 * be walked or on abort.
 */
export async function scanTree(opts: ScanTreeOptions): Promise<ScanResult> {
  const label = opts.label ?? opts.dir;
  const progress = progressLine(opts.progress, label);
  const counts: ScanCounts = {
    entries: 0,
    files: 0,
    bytes: 0,
    mountPoints: [],
    unreadable: [],
    vanished: [],
    special: [],
  };
  const classify = (relPath: Buffer, error: NodeJS.ErrnoException, what: string) => {
    const path = display(relPath);
    const vanished = VANISHED.has(error.code ?? '');
    (vanished ? counts.vanished : counts.unreadable).push(path);
    warn(
      vanished ? 'CHECKSUMDIR_VANISHED' : 'CHECKSUMDIR_UNREADABLE',
      `${label}: ${path}: ${vanished ? 'vanished or changed type' : 'cannot read'} during ${what} (${error.code})`,
      { dir: opts.dir, path, code: error.code },
    );
  };
  const walk = treeWalk({
    root: opts.dir,
    ...(opts.mountPoints && { mountPoints: opts.mountPoints }),
    ...(opts.signal && { signal: opts.signal }),
    onProblem: (p: WalkProblem) =>
      classify(p.relPath, p.error, p.op === 'list' ? 'listing' : 'lstat'),
  });
  const hash = fileHash({
    ...(opts.concurrency !== undefined && { concurrency: opts.concurrency }),
    ...(opts.chunkSize !== undefined && { chunkSize: opts.chunkSize }),
    ...(opts.signal && { signal: opts.signal }),
    onBytes: (n) => progress.addBytes(n),
  });
  const sink = listingSink({
    ...(opts.signal && { signal: opts.signal }),
    onUnhashed: (entry: HashedWalkEntry, error) => classify(entry.relPath, error, 'hashing'),
    onSpecial: (entry) => counts.special.push(display(entry.relPath)),
    onEntry: (entry) => {
      counts.entries++;
      if (entry.mountPoint) counts.mountPoints.push(display(entry.relPath));
      progress.addFile();
    },
  });
  try {
    await pipeline(walk.stream, hash.stream, sink.stream);
  } finally {
    progress.stop();
  }
  const [listing, hashed] = await Promise.all([sink.result, hash.result]);
  counts.files = hashed.files;
  counts.bytes = hashed.bytes;
  if (counts.special.length > 0) {
    warn(
      'CHECKSUMDIR_SPECIAL',
      `${label}: ${counts.special.length} special file(s) listed but not hashed, e.g. ${counts.special.slice(0, 3).join(', ')}`,
      { dir: opts.dir, paths: counts.special },
    );
  }
  return { ...listing, counts };
}
