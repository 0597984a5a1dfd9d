/**
 * `checksumdir --verify <dir>`: scans the tree again and compares it with the
 * `NAME.ls` / `NAME.files` recorded earlier, naming every path that differs.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import { warn } from '../log.js';
import { compareListings, noDifferences } from './compare-listings.js';
import type { ListingDifferences } from './compare-listings.js';
import { splitLines } from './gnu-sort.js';
import type { Listing } from './listing.js';
import { resolveTarget } from './resolve-target.js';
import { scanTree } from './scan-tree.js';
import type { ScanCounts } from './scan-tree.js';
import { parseSha256sumLine } from './sha256sum-line.js';

/** Options of {@link verifyChecksumdir}. */
export interface VerifyChecksumdirOptions {
  /** The directory to check. */
  dir: string;
  /** Directory holding the earlier `NAME.ls` and `NAME.files`. Default: the current directory. */
  recordDir?: string;
  /** NAME of the record files. Default: the basename of `dir`. */
  name?: string;
  /** Progress line target; drawn only when it is a TTY. */
  progress?: Writable;
  /** Hashing worker threads. Default: the number of CPUs, at most 8. */
  concurrency?: number;
  /** Bytes per read. Default 1 MiB. */
  chunkSize?: number;
  signal?: AbortSignal;
}

/** The outcome of a verification. */
export interface VerifyResult {
  /** 0: the tree matches the records; 1: something differs or could not be read. */
  exitCode: 0 | 1;
  /** True when the current listings equal the recorded ones byte for byte. */
  identical: boolean;
  differences: ListingDifferences;
  /**
   * Whether `NAME.sha256sum` matches the record files; undefined when there is
   * none. A mismatch means the records were edited or damaged.
   */
  recordsIntact: boolean | undefined;
  counts: ScanCounts;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function checkRecords(sums: Buffer, name: string, records: Listing): boolean {
  const expected = new Map([
    [`${name}.ls`, records.ls],
    [`${name}.files`, records.files],
  ]);
  let seen = 0;
  for (const line of splitLines(sums)) {
    const parsed = parseSha256sumLine(line);
    const content = parsed && expected.get(parsed.name.toString());
    if (!parsed || !content) return false;
    if (createHash('sha256').update(content).digest('hex') !== parsed.hex) return false;
    seen++;
  }
  return seen === expected.size;
}

/**
 * Rescans `dir` and compares it with its records. Throws {@link UsageError}
 * when the records are missing. Never writes anything.
 */
export async function verifyChecksumdir(opts: VerifyChecksumdirOptions): Promise<VerifyResult> {
  const recordDir = await realpath(opts.recordDir ?? process.cwd()).catch((err: unknown) => {
    throw new UsageError(`cannot use record directory ${opts.recordDir}`, { cause: err });
  });
  // Records inside the tree would show up as differences of their own.
  const target = await resolveTarget(opts.dir, recordDir);
  const name = opts.name ?? target.name;
  const ls = await readOptional(join(recordDir, `${name}.ls`));
  const files = await readOptional(join(recordDir, `${name}.files`));
  if (!ls || !files) {
    throw new UsageError(`no records ${name}.ls and ${name}.files in ${recordDir}`);
  }
  const records: Listing = { ls, files };
  const sums = await readOptional(join(recordDir, `${name}.sha256sum`));
  const recordsIntact = sums === undefined ? undefined : checkRecords(sums, name, records);
  if (recordsIntact === false) {
    warn('CHECKSUMDIR_RECORDS', `${name}.sha256sum does not match ${name}.ls / ${name}.files`, {
      recordDir,
    });
  }
  const scan = await scanTree({
    dir: target.realDir,
    label: name,
    ...(opts.progress && { progress: opts.progress }),
    ...(opts.concurrency !== undefined && { concurrency: opts.concurrency }),
    ...(opts.chunkSize !== undefined && { chunkSize: opts.chunkSize }),
    ...(opts.signal && { signal: opts.signal }),
  });
  const identical = scan.ls.equals(records.ls) && scan.files.equals(records.files);
  const differences = compareListings(records, scan);
  const unreadable = scan.counts.unreadable.length + scan.counts.vanished.length > 0;
  const ok = identical && noDifferences(differences) && recordsIntact !== false && !unreadable;
  return { exitCode: ok ? 0 : 1, identical, differences, recordsIntact, counts: scan.counts };
}
