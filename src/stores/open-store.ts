/**
 * Turns a parsed location into a store. The one place that knows which class
 * serves which URI scheme.
 */
import { NotRootError } from '../errors.js';
import { isRoot } from '../btrfs/exec.js';
import { BtrfsStore } from './btrfs/btrfs-store.js';
import { S3Store } from './s3/s3-store.js';
import type { S3StoreOptions } from './s3/s3-store.js';
import { SshStore } from './ssh/ssh-store.js';
import type { SshStoreOptions } from './ssh/ssh-store.js';
import type { Store } from './store.js';
import type { Location } from './uri.js';

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
}

/**
 * Opens the store for `location`. Throws NotRootError for a local btrfs
 * store when not root (btrfs send/receive/list need it), and UsageError for a
 * store kind this build cannot serve.
 */
export function openStore(location: Location, opts: OpenStoreOptions = {}): Store {
  switch (location.kind) {
    case 'btrfs':
      if (!isRoot()) throw new NotRootError('must be root to access a btrfs filesystem');
      return new BtrfsStore(location, opts.proto ? { proto: opts.proto } : {});
    case 's3':
      return new S3Store(location, opts.s3 ?? {});
    case 'ssh':
      return new SshStore(location, {
        ...(opts.ssh ?? {}),
        ...(opts.proto && opts.ssh?.proto === undefined ? { proto: opts.proto } : {}),
      });
  }
}
