/**
 * `openStore` (`open-store.ts`) for the command line: loads the module of the one store
 * kind a location names when it is opened, so that a local btrfs run never
 * loads ssh2, the S3 stages or the AWS SDK (each a noticeable part of the
 * start-up of a run that has nothing to do).
 */
import type { Store } from './store.js';
import { RetryStore } from './wrappers/retry-store.js';
import { btrfsStoreOptions, sshStoreOptions } from './store-options.js';
import type { OpenStoreOptions } from './store-options.js';
import type { Location } from './uri.js';

/**
 * As `openStore` does, loading the module of `location`'s kind on demand. An
 * SSH store comes wrapped in a {@link RetryStore}, so its listings and size
 * probes are retried with backoff after a transient failure. An S3 store is
 * not: the AWS SDK already retries each request (`maxAttempts`, with
 * `--timeout` per attempt), and a second layer would multiply the attempts.
 */
export async function loadStore(location: Location, opts: OpenStoreOptions = {}): Promise<Store> {
  switch (location.kind) {
    case 'btrfs': {
      const options = btrfsStoreOptions(opts);
      const { BtrfsStore } = await import('./btrfs/btrfs-store.js');
      return new BtrfsStore(location, options);
    }
    case 's3': {
      const { S3Store } = await import('./s3/s3-store.js');
      return new S3Store(location, opts.s3 ?? {});
    }
    case 'ssh': {
      const { SshStore } = await import('./ssh/ssh-store.js');
      return new RetryStore(new SshStore(location, sshStoreOptions(opts)));
    }
  }
}
