/**
 * Turns a parsed location into a store, every store kind linked in (the
 * library's {@link openStore}). The command line loads only the kind a
 * location names (`load-store.ts`); both take their options from
 * `store-options.ts`.
 */
import { BtrfsStore } from './btrfs/btrfs-store.js';
import { S3Store } from './s3/s3-store.js';
import { SshStore } from './ssh/ssh-store.js';
import type { Store } from './store.js';
import { btrfsStoreOptions, sshStoreOptions } from './store-options.js';
import type { OpenStoreOptions } from './store-options.js';
import type { Location } from './uri.js';

export { sshModeFor } from './store-options.js';
export type { OpenStoreOptions, StoreRole } from './store-options.js';

/**
 * Opens the store for `location`. Throws NotRootError for a local btrfs
 * store when not root (btrfs send/receive/list need it), and UsageError for a
 * store kind this build cannot serve.
 */
export function openStore(location: Location, opts: OpenStoreOptions = {}): Store {
  switch (location.kind) {
    case 'btrfs':
      return new BtrfsStore(location, btrfsStoreOptions(opts));
    case 's3':
      return new S3Store(location, opts.s3 ?? {});
    case 'ssh':
      return new SshStore(location, sshStoreOptions(opts));
  }
}
