/**
 * Builds the S3 client every S3 stage and the S3 store use: the AWS SDK's default
 * credential chain (environment, `~/.aws/credentials` and config, `--profile` /
 * `AWS_PROFILE`, SSO, web identity, instance roles) with the original buttersink's
 * `~/.boto` `[Credentials]` as a last resort (one notice when it is used), a custom
 * endpoint (`--endpoint-url`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`) with path-style
 * addressing, and the bucket's region discovered through S3's region redirects when
 * none is configured. Credentials are never logged or put into error messages.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { s3Sdk } from '../../stages/aws-sdk.js';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { UsageError } from '../../errors.js';
import { warn } from '../../log.js';

/** Options of {@link createS3Client}. */
export interface S3ClientOptions {
  /**
   * Endpoint URL of an S3-compatible service (MinIO, Ceph RGW, B2, Wasabi, R2, moto).
   * Default: `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, else AWS. A custom
   * endpoint turns on path-style addressing.
   */
  endpoint?: string;
  /**
   * Region. Default: `AWS_REGION` / `AWS_DEFAULT_REGION` / the profile's region; when
   * none is set, `us-east-1` and S3's redirects lead to the bucket's region.
   */
  region?: string;
  /** Named profile of `~/.aws/config` / `~/.aws/credentials`. Default: `AWS_PROFILE` or `default`. */
  profile?: string;
  /**
   * The boto config file read when the SDK chain finds no credentials. Default:
   * `BOTO_CONFIG`, else `~/.boto`. `false` turns the fallback off.
   */
  botoConfig?: string | false;
  /** Attempts per request, retries of throttling/5xx/network errors included. Default 5. */
  maxAttempts?: number;
}

/** Access keys read from a boto config file. */
export interface BotoCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Reads `aws_access_key_id` and `aws_secret_access_key` from the `[Credentials]`
 * section of a boto config file. Returns undefined when the file or either key is
 * missing. Never throws for a missing or unreadable file.
 */
export function readBotoCredentials(path: string): BotoCredentials | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  let section = '';
  const values = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      continue;
    }
    if (section !== 'Credentials') continue;
    const m = /^([A-Za-z_]+)\s*[=:]\s*(.*)$/.exec(line);
    if (m) values.set(m[1]!.toLowerCase(), m[2]!.trim());
  }
  const accessKeyId = values.get('aws_access_key_id');
  const secretAccessKey = values.get('aws_secret_access_key');
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey };
}

/** The endpoint {@link createS3Client} uses for `opts`, or undefined for AWS. */
export function resolveEndpoint(opts: S3ClientOptions): string | undefined {
  const endpoint =
    opts.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? undefined;
  if (endpoint === undefined || endpoint === '') return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(`endpoint URL '${endpoint}' is not a URL (e.g. https://s3.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`endpoint URL '${endpoint}' must start with http:// or https://`);
  }
  return endpoint;
}

type CredentialProvider = NonNullable<S3ClientConfig['credentials']>;

/**
 * Creates the client. Validates options (UsageError) but makes no request; the
 * credential chain runs at the first request. Call `destroy()` when done.
 */
export function createS3Client(opts: S3ClientOptions = {}): S3Client {
  const maxAttempts = opts.maxAttempts ?? 5;
  if (!(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new UsageError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
  }
  const endpoint = resolveEndpoint(opts);
  const envRegion = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined;
  const region = opts.region ?? envRegion;
  const profile = opts.profile !== undefined ? { profile: opts.profile } : {};
  // A throw-away client resolves the SDK's default chains exactly as the SDK would.
  const probe = new (s3Sdk().S3Client)({ ...(region !== undefined ? { region } : {}), ...profile })
    .config;
  const chain = probe.credentials as (...args: unknown[]) => Promise<unknown>;
  const sdkRegion = probe.region as () => Promise<string>;
  const botoPath =
    opts.botoConfig === false
      ? undefined
      : (opts.botoConfig ?? process.env.BOTO_CONFIG ?? join(homedir(), '.boto'));
  let noticed = false;
  const credentials = (async (...args: unknown[]) => {
    try {
      return await chain(...args);
    } catch (err) {
      const boto = botoPath === undefined ? undefined : readBotoCredentials(botoPath);
      if (!boto) throw err;
      if (!noticed) {
        noticed = true;
        warn('BOTO_CREDENTIALS', `no AWS SDK credentials found; using the keys in ${botoPath}`);
      }
      return boto;
    }
  }) as CredentialProvider;
  return new (s3Sdk().S3Client)({
    ...profile,
    // Without a configured region, us-east-1 plus redirects finds the bucket's region.
    region: region ?? (() => sdkRegion().catch(() => 'us-east-1')),
    ...(endpoint !== undefined ? { endpoint, forcePathStyle: true } : {}),
    followRegionRedirects: true,
    credentials,
    maxAttempts,
    // Parts carry their own Content-MD5; extra SDK checksums would break S3-compatible services.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
