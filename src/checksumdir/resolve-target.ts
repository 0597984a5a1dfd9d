/**
 * Resolves a checksumdir `<dir>` argument: its real path, the `NAME` its
 * outputs are called by, and the refusal to write outputs inside it.
 */
import { realpath, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { UsageError } from '../errors.js';

/** A `<dir>` argument, resolved. */
export interface ChecksumdirTarget {
  /** As given. */
  dir: string;
  /** Real path (symlinks resolved). */
  realDir: string;
  /** Basename of `dir`; of its real path when `dir` ends in `.` or `..`. */
  name: string;
}

function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * Checks that `dir` is an existing directory and that `outDir` (already a real
 * path) is not inside it; throws {@link UsageError} otherwise.
 */
export async function resolveTarget(dir: string, outDir: string): Promise<ChecksumdirTarget> {
  let realDir: string;
  try {
    realDir = await realpath(dir);
    if (!(await stat(realDir)).isDirectory()) throw new UsageError(`${dir} is not a directory`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  if (isInside(outDir, realDir)) {
    throw new UsageError(
      `cannot write results into ${dir} (output directory ${outDir}); run from a different directory`,
    );
  }
  let name = basename(dir);
  if (name === '' || name === '.' || name === '..') name = basename(realDir);
  return { dir, realDir, name };
}
