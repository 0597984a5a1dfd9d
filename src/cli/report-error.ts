/**
 * How an error reaches the user: one line, with a hint chosen by the error's
 * class and code (never by its text); stacks go to the log. Wrappers (a
 * `TransferError` naming the snapshot) keep what failed as `cause`: hints and
 * exit codes look down the whole cause chain.
 */
import {
  CredentialsError,
  LocationError,
  RemoteError,
  UsageError,
  causes,
  describeError,
  findCause,
} from '../errors.js';
import { debug } from '../log.js';
import type { CliIo } from './io.js';

/**
 * The fix to suggest for `err`, chosen by the classes and codes in its cause
 * chain (never by text); undefined when there is none. `srcArg`: the source as typed.
 */
export function hintFor(err: unknown, srcArg: string | undefined): string | undefined {
  const location = findCause(err, LocationError)?.code ?? remoteCode(err);
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
  if (findCause(err, RemoteError)?.exitCode === 127) {
    return "give the remote buttersink's command line with --remote-command (default 'sudo buttersink')";
  }
  return undefined;
}

/** The error code a remote server reported, for errors that came over SSH. */
function remoteCode(err: unknown): string | undefined {
  const code = (findCause(err, RemoteError) as { remoteCode?: unknown } | undefined)?.remoteCode;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Prints `err` as one line, with the fix {@link hintFor} suggests; the stack
 * (and its causes') goes to the `--logfile`, and to stderr only with
 * `verbose` (`-v`). Returns the exit code: 2 when the cause chain holds a
 * usage error, else 1.
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
  return findCause(err, UsageError) ? 2 : 1;
}
