/**
 * What opening a store takes, whatever its kind, and the constructor options
 * each kind gets from it. Imports no store class, so that the one that loads
 * a store's module on demand (`load-store.ts`) and the one that links them all
 * (`open-store.ts`) share it without loading every kind.
 */
import { NotRootError } from '../errors.js';
import { isRoot } from '../btrfs/exec.js';
import type { BtrfsStoreOptions } from './btrfs/btrfs-store.js';
import type { S3StoreOptions } from './s3/s3-store.js';
import type { SshStoreOptions } from './ssh/ssh-store.js';
import type { ServerMode } from '../wire/protocol.js';

/**
 * What a store is opened for: `source` (read from), `dest` (written to), or
 * `inspect` (listed or verified).
 */
export type StoreRole = 'source' | 'dest' | 'inspect';

/** Options for every store kind; each kind reads the ones it knows. */
export interface OpenStoreOptions {
  /** Send stream protocol version for btrfs sends. */
  proto?: 1 | 2;
  /** S3 stores: endpoint, region, profile, encryption, part size (bytes), jobs; see {@link S3StoreOptions}. */
  s3?: S3StoreOptions;
  /**
   * SSH stores: server mode (`r` for a source, `a` for a destination, `w` with
   * deletes; default `w`), remote command (default `sudo buttersink`), identity
   * files, accept-new for host keys; see {@link SshStoreOptions}.
   */
  ssh?: SshStoreOptions;
  /**
   * What the store is opened for; an SSH store then asks the remote for the
   * least mode that role needs ({@link sshModeFor}) unless `ssh.mode` is given.
   * Without a role an SSH store asks for `w` (everything).
   */
  role?: StoreRole;
  /** With `role`: the run deletes (snapshots, or partial transfers). Default false. */
  deletes?: boolean;
}

/**
 * The least SSH server mode a store opened for `role` needs, so that an
 * administrator can allow one mode per sudoers line: a source or an inspected
 * store reads (`r`), a destination adds (`a`); deleting anything needs `w`.
 * A source never deletes, whatever `deletes` says.
 */
export function sshModeFor(role: StoreRole, deletes = false): ServerMode {
  if (role === 'source') return 'r';
  if (deletes) return 'w';
  return role === 'dest' ? 'a' : 'r';
}

/**
 * The options of a local btrfs store: a run's own store, the one writer under
 * its lock, so it keeps its listing while it holds the lock (`cacheListing`).
 * Throws NotRootError when not root (btrfs send/receive/list need it).
 */
export function btrfsStoreOptions(opts: OpenStoreOptions): BtrfsStoreOptions {
  if (!isRoot()) throw new NotRootError('must be root to access a btrfs filesystem');
  return { cacheListing: true, ...(opts.proto ? { proto: opts.proto } : {}) };
}

/** The options of an SSH store: the role's mode unless `ssh.mode` says, `--proto` unless `ssh.proto` does. */
export function sshStoreOptions(opts: OpenStoreOptions): SshStoreOptions {
  return {
    ...(opts.role !== undefined ? { mode: sshModeFor(opts.role, opts.deletes) } : {}),
    ...(opts.ssh ?? {}),
    ...(opts.proto && opts.ssh?.proto === undefined ? { proto: opts.proto } : {}),
  };
}
