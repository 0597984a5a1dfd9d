/**
 * What the command line does only for S3 stores, without loading the S3
 * modules (and the AWS SDK) for the runs that have none.
 */
import type { S3Store } from '../stores/s3/s3-store.js';
import type { Store } from '../stores/store.js';
import { unwrapStore } from '../stores/wrappers/unwrap.js';

/**
 * The S3Store `store` is or wraps (retry, dry run), else undefined; loads the
 * S3 store's module only for a store of kind `s3`.
 */
export async function asS3Store(store: Store): Promise<S3Store | undefined> {
  if (store.kind !== 's3') return undefined;
  const { S3Store } = await import('../stores/s3/s3-store.js');
  const inner = unwrapStore(store);
  return inner instanceof S3Store ? inner : undefined;
}
