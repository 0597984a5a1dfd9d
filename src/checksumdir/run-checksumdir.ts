/**
 * `checksumdir <dir>...`: records every directory's listings so a restored
 * copy can be verified. Byte-compatible with the original shell script.
 */
import { realpath } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import { readMountPoints } from '../btrfs/mountinfo.js';
import { resolveTarget } from './resolve-target.js';
import { scanTree } from './scan-tree.js';
import type { ScanCounts } from './scan-tree.js';
import { writeChecksumdirOutputs } from './write-outputs.js';
import type { ChecksumdirOutputs } from './write-outputs.js';

/** Options of {@link runChecksumdir}. */
export interface ChecksumdirOptions {
  /** Directories to record, at least one. */
  dirs: string[];
  /** Where `NAME.ls`, `NAME.files`, `NAME.sha256sum` go. Default: the current directory. */
  outDir?: string;
  /** Progress line target; drawn only when it is a TTY. */
  progress?: Writable;
  /** Hashing worker threads. Default: the number of CPUs, at most 8. */
  concurrency?: number;
  /** Bytes per read. Default 1 MiB. Memory for file data ≤ concurrency × chunkSize. */
  chunkSize?: number;
  signal?: AbortSignal;
}

/** The outcome for one directory. */
export interface ChecksumdirDirResult {
  dir: string;
  name: string;
  outputs: ChecksumdirOutputs;
  counts: ScanCounts;
}

/** The outcome of a run. */
export interface ChecksumdirResult {
  /** 0: every entry recorded; 1: something was unreadable or vanished (outputs still written). */
  exitCode: 0 | 1;
  dirs: ChecksumdirDirResult[];
}

/**
 * Records each directory in turn. All arguments are checked before any work:
 * a missing directory, an output directory inside one of them, or two
 * directories with the same NAME throw {@link UsageError}. Unreadable or
 * vanished entries are warned about and make `exitCode` 1, but the outputs are
 * still written: they are exactly what the reference `find | sha256sum | sort`
 * pipeline writes in that case (the entry missing), so they remain comparable.
 */
export async function runChecksumdir(opts: ChecksumdirOptions): Promise<ChecksumdirResult> {
  if (opts.dirs.length === 0) throw new UsageError('checksumdir needs at least one directory');
  let outDir: string;
  try {
    outDir = await realpath(opts.outDir ?? process.cwd());
  } catch (err) {
    throw new UsageError(`cannot use output directory ${opts.outDir}`, { cause: err });
  }
  const targets = [];
  const names = new Set<string>();
  for (const dir of opts.dirs) {
    const target = await resolveTarget(dir, outDir);
    if (names.has(target.name)) {
      throw new UsageError(`two directories named ${target.name}: their outputs would collide`);
    }
    names.add(target.name);
    targets.push(target);
  }
  const mountPoints = await readMountPoints();
  const results: ChecksumdirDirResult[] = [];
  for (const target of targets) {
    opts.signal?.throwIfAborted();
    const scan = await scanTree({
      dir: target.realDir,
      label: target.name,
      mountPoints,
      ...(opts.progress && { progress: opts.progress }),
      ...(opts.concurrency !== undefined && { concurrency: opts.concurrency }),
      ...(opts.chunkSize !== undefined && { chunkSize: opts.chunkSize }),
      ...(opts.signal && { signal: opts.signal }),
    });
    opts.signal?.throwIfAborted();
    const outputs = await writeChecksumdirOutputs(outDir, target.name, scan);
    results.push({ dir: target.dir, name: target.name, outputs, counts: scan.counts });
  }
  const failed = results.some((r) => r.counts.unreadable.length + r.counts.vanished.length > 0);
  return { exitCode: failed ? 1 : 0, dirs: results };
}
