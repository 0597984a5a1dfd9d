/**
 * Seeing through store wrappers: a wrapper ({@link DryRunStore},
 * {@link RetryStore}) keeps the store it wraps as `inner`. Code that needs a
 * concrete store class (an S3 → S3 server-side copy needs both ends to be S3
 * stores) looks at the store under the wrappers, never at the wrapper.
 */
import type { Store } from '../store.js';

/** The store under every wrapper around `store` (`store` itself when it wraps nothing). */
export function unwrapStore(store: Store): Store {
  let s: Store = store;
  while ('inner' in s && typeof s.inner === 'object' && s.inner !== null) s = s.inner as Store;
  return s;
}
