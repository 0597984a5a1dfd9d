/**
 * Confinement of client-named paths to the served directory. The syntax is
 * checked by `checkRelativePath` (protocol.ts); here the filesystem: no
 * component may be a symlink (a link could lead out of the root), and what
 * exists must really lie below the root.
 */
import { lstat, realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { checkRelativePath, ServerRefusal } from '../wire/protocol.js';

/**
 * True when `path` (absolute, real) is `root` or below it: the relative path
 * does not climb out (`..` or `../…`). A name that merely starts with `..`
 * (`..c`) is inside. POSIX only, where `relative` never returns an absolute path.
 */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '..' && !rel.startsWith(`..${sep}`);
}

/**
 * Resolves `rel` below `root` (a real path) for the server. Contract: throws a
 * ServerRefusal (`PATH`) when `rel` is not a safe relative path, when any
 * existing component of it is a symlink or (except the last) not a directory,
 * or when the existing part does not resolve below `root`; with `mustExist`,
 * also (`NOT_FOUND`) when it does not exist. Returns the absolute path.
 */
export async function resolveInside(
  root: string,
  rel: string,
  opts: { mustExist: boolean },
): Promise<string> {
  const parts = checkRelativePath(rel);
  let at = root;
  for (const [i, part] of parts.entries()) {
    at = join(at, part);
    let st;
    try {
      st = await lstat(at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (opts.mustExist) throw new ServerRefusal('NOT_FOUND', `${rel}: no such snapshot`);
      return join(root, ...parts);
    }
    if (st.isSymbolicLink()) {
      throw new ServerRefusal(
        'PATH',
        `refusing ${rel}: ${parts.slice(0, i + 1).join('/')} is a symlink`,
      );
    }
    if (i < parts.length - 1 && !st.isDirectory()) {
      throw new ServerRefusal(
        'PATH',
        `refusing ${rel}: ${parts.slice(0, i + 1).join('/')} is not a directory`,
      );
    }
  }
  const real = await realpath(at);
  if (!isInside(root, real))
    throw new ServerRefusal('PATH', `refusing ${rel}: outside the served directory`);
  return at;
}
