/**
 * How an error reaches the user: one line, with a hint chosen by the error's
 * class and code (never by its text); stacks go to the log.
 */
import {
  CredentialsError,
  LocationError,
  RemoteError,
  UsageError,
  describeError,
} from '../errors.js';
import { debug } from '../log.js';
import type { CliIo } from './io.js';

/**
 * The fix to suggest for `err`, chosen by its class and code (never by its
 * text); undefined when there is none. `srcArg`: the source as typed.
 */
export function hintFor(err: unknown, srcArg: string | undefined): string | undefined {
  const location = err instanceof LocationError ? err.code : remoteCode(err);
  if (
    srcArg !== undefined &&
    !srcArg.endsWith('/') &&
    (location === 'NO_SUCH_DIRECTORY' ||
      location === 'NOT_A_DIRECTORY' ||
      location === 'SNAPSHOT_NOT_FOUND')
  ) {
    return `a source without a trailing '/' is one snapshot; for a directory of snapshots write ${srcArg}/`;
  }
  // The AWS SDK's own class (from @smithy/property-provider), matched by its name, not its text.
  const noCredentials = (e: unknown) =>
    e instanceof CredentialsError || (e as Error | null)?.name === 'CredentialsProviderError';
  if (causes(err).some(noCredentials)) {
    return 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (--profile), or write ~/.aws/credentials (aws configure)';
  }
  if (err instanceof RemoteError && err.exitCode === 127) {
    return "give the remote buttersink's command line with --remote-command (default 'sudo buttersink')";
  }
  return undefined;
}

/** The error code a remote server reported, for errors that came over SSH. */
function remoteCode(err: unknown): string | undefined {
  const code = (err as { remoteCode?: unknown } | null)?.remoteCode;
  return err instanceof RemoteError && typeof code === 'string' ? code : undefined;
}

/** `err` and its chain of `cause`s, outermost first (at most 10). */
export function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && chain.length < 10; e = (e as { cause?: unknown }).cause) {
    chain.push(e);
    if (!(e instanceof Error)) break;
  }
  return chain;
}

/**
 * Prints `err` as one line, with the fix {@link hintFor} suggests; the stack
 * (and its causes') goes to the `--logfile`, and to stderr only with
 * `verbose` (`-v`). Returns the exit code: 2 for usage errors, else 1.
 */
export function reportError(
  io: CliIo,
  prog: string,
  err: unknown,
  opts: { srcArg?: string | undefined; verbose?: boolean } = {},
): number {
  const msg = describeError(err);
  const hint = hintFor(err, opts.srcArg);
  io.stderr.write(`${prog}: ${msg}${hint ? `; ${hint}` : ''}\n`);
  const stacks = causes(err)
    .map((e) => (e instanceof Error ? (e.stack ?? e.message) : String(e)))
    .join('\nCaused by: ');
  debug('error', { error: stacks });
  if (opts.verbose) io.stderr.write(`${stacks}\n`);
  if (err instanceof UsageError) return 2;
  return 1;
}
