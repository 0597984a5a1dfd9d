/**
 * Administrative subvolume commands: create, snapshot, delete, and the
 * read-only property. Each runs one `btrfs` process and resolves only after it
 * exited 0.
 */
import { lstat } from 'node:fs/promises';
import { ButtersinkError, StoreError } from '../errors.js';
import { runBtrfs } from './exec.js';

/** Cancels the command. */
interface Cancellable {
  signal?: AbortSignal;
}

function sig(opts: Cancellable): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}

/** Creates an empty subvolume at `path` (`btrfs subvolume create`). Its parent directory must exist. */
export async function createSubvolume(path: string, opts: Cancellable = {}): Promise<void> {
  await runBtrfs(['subvolume', 'create', path], sig(opts));
}

/** Options of {@link snapshot}. */
export interface SnapshotOptions extends Cancellable {
  /** Make the snapshot read-only (`-r`). Default true: sendable snapshots are read-only. */
  readOnly?: boolean;
}

/**
 * Snapshots subvolume `source` to `dest` (`btrfs subvolume snapshot [-r]`).
 * `dest` must not exist (an existing directory would receive the snapshot inside
 * it, so that case is refused here with a StoreError instead).
 */
export async function snapshot(
  source: string,
  dest: string,
  opts: SnapshotOptions = {},
): Promise<void> {
  const exists = await lstat(dest).then(
    () => true,
    () => false,
  );
  if (exists) throw new StoreError(`snapshot destination exists: ${dest}`);
  const ro = opts.readOnly ?? true;
  await runBtrfs(['subvolume', 'snapshot', ...(ro ? ['-r'] : []), source, dest], sig(opts));
}

/** Options of {@link deleteSubvolume}. */
export interface DeleteSubvolumeOptions extends Cancellable {
  /** Wait for the transaction commit after deleting (`-c`). Default true. */
  commit?: boolean;
}

/**
 * Deletes subvolumes (`btrfs subvolume delete [-c] PATH...`); by default waits
 * for the commit so the deletion survives a crash. Space is reclaimed later by
 * the cleaner. A read-only subvolume can be deleted as is.
 */
export async function deleteSubvolume(
  paths: string | readonly string[],
  opts: DeleteSubvolumeOptions = {},
): Promise<void> {
  const list = typeof paths === 'string' ? [paths] : [...paths];
  if (list.length === 0) return;
  await runBtrfs(
    ['subvolume', 'delete', ...((opts.commit ?? true) ? ['-c'] : []), ...list],
    sig(opts),
  );
}

/** Options of {@link setReadOnly}. */
export interface SetReadOnlyOptions extends Cancellable {
  /**
   * Pass `-f` (btrfs-progs ≥ 6.0 refuses to make a received subvolume writable
   * without it, because that clears its received UUID). Default false.
   */
  force?: boolean;
}

/** Sets or clears the read-only flag (`btrfs property set -ts PATH ro true|false`). */
export async function setReadOnly(
  path: string,
  readOnly: boolean,
  opts: SetReadOnlyOptions = {},
): Promise<void> {
  await runBtrfs(
    [
      'property',
      'set',
      ...(opts.force ? ['-f'] : []),
      '-ts',
      path,
      'ro',
      readOnly ? 'true' : 'false',
    ],
    sig(opts),
  );
}

/** Reads the read-only flag (`btrfs property get -ts PATH ro`). */
export async function getReadOnly(path: string, opts: Cancellable = {}): Promise<boolean> {
  const { stdout } = await runBtrfs(['property', 'get', '-ts', path, 'ro'], sig(opts));
  const m = /^ro=(true|false)$/m.exec(stdout);
  if (!m) throw new ButtersinkError(`unexpected output of btrfs property get: ${stdout.trim()}`);
  return m[1] === 'true';
}
