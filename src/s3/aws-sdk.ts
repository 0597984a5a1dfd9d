/**
 * `@aws-sdk/client-s3`, loaded on first use. Loading the SDK takes about
 * 100 ms of start-up (measured: ~115 ms of the CLI's ~350 ms module loading),
 * which a btrfs → btrfs or SSH run never needs; so the S3 stages and store
 * import only its types statically and take its classes from here when they
 * make a client or a request. Synchronous (the package's `main` is CommonJS,
 * the same module instance a static ESM import would give), so a client can
 * still be made in a getter.
 */
import { createRequire } from 'node:module';
import type * as S3Sdk from '@aws-sdk/client-s3';

let sdk: typeof S3Sdk | undefined;

/** The `@aws-sdk/client-s3` module, loaded on the first call. */
export function s3Sdk(): typeof S3Sdk {
  sdk ??= createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3Sdk;
  return sdk;
}
