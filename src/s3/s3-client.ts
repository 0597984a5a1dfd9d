/**
 * Builds the S3 client every S3 stage and the S3 store use: the AWS SDK's default
 * credential chain (environment, `~/.aws/credentials` and config, `--profile` /
 * `AWS_PROFILE`, SSO, web identity, instance roles) with the original buttersink's
 * `~/.boto` `[Credentials]` as a last resort (one notice when it is used), a custom
 * endpoint (`--endpoint-url`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`) with path-style
 * addressing, and the bucket's region discovered through S3's region redirects when
 * none is configured. Credentials are never logged or put into error messages.
 *
 * Nothing waits for ever: every request attempt fails when it makes no progress for
 * `requestTimeoutMs` (connecting, sending the body, waiting for or reading the
 * response), the SDK's adaptive retry strategy retries it up to `maxAttempts` times, and a
 * request that timed out on its last attempt fails with one line naming the
 * operation, the limit and the attempts (`GetObject timed out after 60 s (5
 * attempts)`); callers put the object's `s3://` URI in front.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { s3Sdk } from './aws-sdk.js';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { ButtersinkError, UsageError, describeError } from '../errors.js';
import { warn } from '../log.js';
import { formatSeconds as seconds } from '../format.js';

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
  /**
   * Attempts per request, retries of throttling/5xx/network errors and timeouts
   * included. Default {@link DEFAULT_S3_MAX_ATTEMPTS}. Retries use the SDK's adaptive
   * mode: exponential backoff with jitter, and a client-side rate limit that slows
   * every request of the client down while S3 throttles (SlowDown, 503), so heavy
   * throttling makes a transfer slower instead of failing it.
   */
  maxAttempts?: number;
  /**
   * Milliseconds an attempt may go without progress (no connection, no byte of the
   * request body taken, no byte of the response) before it fails as timed out and
   * is retried. It bounds silence, not duration: a long part upload that keeps
   * moving is never cut. Default {@link DEFAULT_S3_REQUEST_TIMEOUT_MS}; 0: no limit.
   */
  requestTimeoutMs?: number;
}

/** Default {@link S3ClientOptions.maxAttempts}: 8. */
export const DEFAULT_S3_MAX_ATTEMPTS = 8;

/** Default {@link S3ClientOptions.requestTimeoutMs}: 60 s. */
export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 60_000;

/**
 * An S3 request timed out on its last attempt (see {@link S3ClientOptions.requestTimeoutMs}).
 * Not retried again (the SDK did), and not a StoreError, so a store wraps it with the
 * object or listing it was for.
 */
export class S3TimeoutError extends ButtersinkError {
  override readonly code = 'TIMEOUT';
  /** The operation, e.g. `GetObject`. */
  readonly operation: string;
  /** Attempts made, each of which timed out or failed (the last one timed out). */
  readonly attempts: number;
  constructor(
    message: string,
    facts: { operation: string; attempts: number },
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.operation = facts.operation;
    this.attempts = facts.attempts;
  }
}

/**
 * One line for an S3 request that failed: `<op> failed after N attempts: <error
 * code> (last: <message>)` when the SDK retried it, else its message as is (an
 * {@link S3TimeoutError} already names its attempts).
 */
export function describeS3Failure(op: string, err: unknown): string {
  const detail = describeError(err);
  if (err instanceof S3TimeoutError) return detail;
  const e = err as { name?: unknown; $metadata?: { attempts?: unknown } } | null;
  const attempts = e?.$metadata?.attempts;
  if (typeof attempts !== 'number' || attempts < 2) return detail;
  const name = typeof e?.name === 'string' && e.name !== 'Error' ? e.name : 'error';
  return `${op} failed after ${attempts} attempts: ${name} (last: ${detail})`;
}

/**
 * Checks the `client`, `bucket` (non-empty) and `key` a stage on one object is given;
 * throws `UsageError('<who>: client, bucket and key are required')` otherwise.
 */
export function requireS3Object(
  who: string,
  opts: { client: S3Client; bucket: string; key: string },
): void {
  const { client, bucket, key } = opts;
  if (!client || typeof bucket !== 'string' || bucket === '' || typeof key !== 'string') {
    throw new UsageError(`${who}: client, bucket and key are required`);
  }
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

/** True for the error the SDK's HTTP handler raises when an attempt made no progress in time. */
function isSdkTimeout(err: unknown): boolean {
  return (
    typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'TimeoutError'
  );
}

/**
 * Middleware outermost in the client's stack (outside the retry strategy): a
 * request whose last attempt timed out becomes one {@link S3TimeoutError}
 * (`GetObject timed out after 60 s (5 attempts)`), not retried again by callers;
 * and a response body that stalls while the caller reads it fails with
 * `GetObject response stalled: no data for 60 s` (still a retryable TimeoutError:
 * the request itself succeeded, so only the caller can retry it).
 */
function timeoutMessages(timeoutMs: number) {
  return <Output extends object>(
      next: (args: unknown) => Promise<{ output: Output; response: unknown }>,
      context: { commandName?: string },
    ) =>
    async (args: unknown) => {
      const op = (context.commandName ?? 'request').replace(/Command$/, '');
      try {
        const result = await next(args);
        const body = (result.output as { Body?: unknown }).Body;
        if (body && typeof (body as NodeJS.EventEmitter).on === 'function') {
          (body as NodeJS.EventEmitter).on('error', (err: unknown) => {
            if (isSdkTimeout(err)) {
              (err as Error).message = `${op} response stalled: no data for ${seconds(timeoutMs)}`;
            }
          });
        }
        return result;
      } catch (err) {
        if (!isSdkTimeout(err)) throw err;
        const attempts = (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
        throw new S3TimeoutError(
          `${op} timed out after ${seconds(timeoutMs)} (${attempts} attempt${attempts === 1 ? '' : 's'})`,
          { operation: op, attempts },
          { cause: err },
        );
      }
    };
}

/**
 * Creates the client. Validates options (UsageError) but makes no request; the
 * credential chain runs at the first request. Call `destroy()` when done.
 */
export function createS3Client(opts: S3ClientOptions = {}): S3Client {
  const maxAttempts = opts.maxAttempts ?? DEFAULT_S3_MAX_ATTEMPTS;
  if (!(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new UsageError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
  }
  const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_S3_REQUEST_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new UsageError(
      `requestTimeoutMs must be a number of milliseconds from 0 (no limit), got ${timeoutMs}`,
    );
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
  const client = new (s3Sdk().S3Client)({
    ...profile,
    // Without a configured region, us-east-1 plus redirects finds the bucket's region.
    region: region ?? (() => sdkRegion().catch(() => 'us-east-1')),
    ...(endpoint !== undefined ? { endpoint, forcePathStyle: true } : {}),
    followRegionRedirects: true,
    credentials,
    maxAttempts,
    // Backoff with jitter plus a token bucket that slows the client down under throttling.
    retryMode: 'adaptive',
    // Parts carry their own Content-MD5; extra SDK checksums would break S3-compatible services.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Idle limits, not a cap on duration: `socketTimeout` fails an attempt whose socket
    // moved no byte for that long (request body, response head or body), and
    // `connectionTimeout` one that did not connect. The retry strategy retries both.
    ...(timeoutMs > 0
      ? { requestHandler: { connectionTimeout: timeoutMs, socketTimeout: timeoutMs } }
      : {}),
  });
  if (timeoutMs > 0) {
    client.middlewareStack.add(timeoutMessages(timeoutMs) as never, {
      step: 'initialize',
      priority: 'high',
      name: 'buttersinkTimeoutMessages',
    });
  }
  return client;
}
