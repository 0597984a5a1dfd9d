/**
 * Reading and appending the small files a store keeps beside snapshots (the
 * `.bs` size info) without following a symbolic link: buttersink runs as
 * root, and a link planted at such a path must not make it read, or append
 * to, another file. The last path component is opened with `O_NOFOLLOW`
 * (earlier components are the store's own directories); only regular files
 * are read or written, and `O_NONBLOCK` keeps a FIFO planted there from
 * blocking the open.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { StoreError } from '../errors.js';

/** The path is a symbolic link or not a regular file, so it was neither read nor written. */
export class NoFollowError extends StoreError {
  override readonly code = 'NO_FOLLOW';
}

async function openNoFollow(path: string, flags: number, mode?: number): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new NoFollowError(`${path}: is a symbolic link; not following it`, { cause: err });
    }
    throw err;
  }
  try {
    if (!(await fh.stat()).isFile()) {
      throw new NoFollowError(`${path}: not a regular file`);
    }
  } catch (err) {
    await fh.close();
    throw err;
  }
  return fh;
}

/**
 * Reads the regular file `path` as UTF-8, opened `O_RDONLY | O_NOFOLLOW`.
 * Throws {@link NoFollowError} when `path` is a symbolic link (dangling or
 * not) or not a regular file; other failures (e.g. ENOENT) as `fs` reports them.
 */
export async function readNoFollow(path: string): Promise<string> {
  const fh = await openNoFollow(path, constants.O_RDONLY);
  try {
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Appends `data` to the regular file `path`, opened `O_WRONLY | O_APPEND |
 * O_CREAT | O_NOFOLLOW`; a new file gets `mode` (default 0644, less the
 * umask), an existing one keeps its mode. Throws {@link NoFollowError} when
 * `path` is a symbolic link (nothing is created at its target) or not a
 * regular file; other failures as `fs` reports them.
 */
export async function appendNoFollow(path: string, data: string, mode = 0o644): Promise<void> {
  const fh = await openNoFollow(
    path,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
    mode,
  );
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}
