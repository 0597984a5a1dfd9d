/**
 * Turns a parsed location into a store. The one place that knows which class
 * serves which URI scheme.
 */
import { NotRootError, UsageError } from '../errors.js';
import { isRoot } from '../btrfs/exec.js';
import { BtrfsStore } from './btrfs/btrfs-store.js';
import type { Store } from './store.js';
import type { Location } from './uri.js';

/** Options for every store kind; each kind reads the ones it knows. */
export interface OpenStoreOptions {
  /** Send stream protocol version for btrfs sends. */
  proto?: 1 | 2;
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
    case 'ssh':
    case 's3':
      throw new UsageError(`${location.uri}: ${location.kind}:// stores are not available yet`);
  }
}
