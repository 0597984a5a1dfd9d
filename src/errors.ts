/**
 * The one error hierarchy of buttersink. Every failure a user can meet is a
 * {@link ButtersinkError} with a stable `code`, a one-line `message` fit to print
 * as is, the original `cause` kept, and the facts needed to act on it.
 */

/** Options accepted by every {@link ButtersinkError}. */
export interface ButtersinkErrorOptions {
  /** The underlying error, kept for `--logfile` and debugging. */
  cause?: unknown;
}

/** Base class: `code` identifies the kind of failure, `message` is one line for the user. */
export class ButtersinkError extends Error {
  readonly code: string = 'BUTTERSINK';
  constructor(message: string, options: ButtersinkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** Bad command-line or API input: wrong URI, missing path, bad option value. Exit code 2 in the CLI. */
export class UsageError extends ButtersinkError {
  override readonly code: string = 'USAGE';
}

/** What is wrong with a location, as {@link LocationError.code}. */
export type LocationProblem =
  /** The directory does not exist. */
  | 'NO_SUCH_DIRECTORY'
  /** The path exists but is not a directory. */
  | 'NOT_A_DIRECTORY'
  /** The snapshot named (no trailing `/`) is not among the source's snapshots. */
  | 'SNAPSHOT_NOT_FOUND'
  /** A directory URI (trailing `/`) that is itself one read-only snapshot. */
  | 'SNAPSHOT_AS_DIRECTORY'
  /** The snapshot named is a read-write subvolume, which cannot be sent. */
  | 'READ_WRITE_SUBVOLUME'
  /** A sync source holding no snapshots or diffs at all. */
  | 'EMPTY_SOURCE';

/**
 * A location (a CLI `<src>`/`<dst>`) that does not name what its form says: the
 * message is one line naming the path and, where there is one, the fix. A usage
 * error (exit 2); the CLI chooses further hints by `code`.
 */
export class LocationError extends UsageError {
  override readonly code: LocationProblem;
  constructor(code: LocationProblem, message: string, options: ButtersinkErrorOptions = {}) {
    super(message, options);
    this.code = code;
  }
}

/** A send stream failed framing or CRC checks, or ended before END. */
export class StreamCorruptError extends ButtersinkError {
  override readonly code = 'STREAM_CORRUPT';
  /** Zero-based index of the command where the problem was found (-1: stream header). */
  readonly commandIndex: number;
  /** Byte offset in the stream where the bad command (or header) starts. */
  readonly offset: number;
  constructor(
    message: string,
    facts: { commandIndex: number; offset: number },
    options: ButtersinkErrorOptions = {},
  ) {
    super(message, options);
    this.commandIndex = facts.commandIndex;
    this.offset = facts.offset;
  }
}

/**
 * The receive guard refused a send stream that did not come from this
 * machine's own `btrfs send`: it would create something other than the one
 * announced snapshot, or write outside it. Nothing was committed.
 */
export class StreamRefusedError extends ButtersinkError {
  override readonly code = 'STREAM_REFUSED';
  /** Which guard rule the stream broke (stable, e.g. `path-escape`, `symlink-write`). */
  readonly rule: string;
  /** Zero-based index of the refused command (-1: the stream as a whole). */
  readonly commandIndex: number;
  constructor(
    message: string,
    facts: { rule: string; commandIndex: number },
    options: ButtersinkErrorOptions = {},
  ) {
    super(message, options);
    this.rule = facts.rule;
    this.commandIndex = facts.commandIndex;
  }
}

/** A child process (btrfs, ssh, sudo) failed. Carries the command line, exit code and stderr. */
export class CommandError extends ButtersinkError {
  override readonly code = 'COMMAND_FAILED';
  readonly command: string;
  readonly exitCode: number | undefined;
  readonly stderr: string;
  constructor(
    message: string,
    facts: { command: string; exitCode?: number | undefined; stderr?: string },
    options: ButtersinkErrorOptions = {},
  ) {
    super(message, options);
    this.command = facts.command;
    this.exitCode = facts.exitCode;
    this.stderr = facts.stderr ?? '';
  }
}

/** The operation needs root (btrfs send/receive/list). */
export class NotRootError extends ButtersinkError {
  override readonly code = 'NOT_ROOT';
}

/** A path that should be on btrfs is not, or is not a directory / subvolume. */
export class NotBtrfsError extends ButtersinkError {
  override readonly code = 'NOT_BTRFS';
}

/** The run was cancelled (Ctrl-C, SIGTERM, AbortSignal). */
export class AbortedError extends ButtersinkError {
  override readonly code = 'ABORTED';
}

/** A store (S3, SSH, btrfs) refused or failed an operation. */
export class StoreError extends ButtersinkError {
  override readonly code: string = 'STORE';
}

/** A snapshot path that would leave its store (`..`, a symlink on the way, control characters). Nothing was written. */
export class UnsafePathError extends StoreError {
  override readonly code = 'UNSAFE_PATH';
}

/**
 * A sync skipped snapshots whose diffs the receive guard refused (hostile or
 * damaged); everything else was transferred. Nothing was deleted.
 */
export class RefusedDiffsError extends StoreError {
  override readonly code = 'DIFFS_REFUSED';
  /** Paths of the snapshots skipped. */
  readonly skipped: readonly string[];
  /** How many transfers succeeded (the sync's TransferDone list). */
  readonly transferred: readonly unknown[];
  constructor(
    message: string,
    facts: { skipped: readonly string[]; transferred: readonly unknown[] },
    options: ButtersinkErrorOptions = {},
  ) {
    super(message, options);
    this.skipped = facts.skipped;
    this.transferred = facts.transferred;
  }
}

/**
 * A sync refused to start: the destination's preflight found a planned path
 * taken or too little free space. Nothing was sent.
 */
export class PreflightError extends StoreError {
  override readonly code = 'PREFLIGHT';
  /** What the preflight found, one line each. */
  readonly problems: readonly { readonly code: string; readonly message: string }[];
  constructor(
    message: string,
    facts: { problems: readonly { readonly code: string; readonly message: string }[] },
    options: ButtersinkErrorOptions = {},
  ) {
    super(message, options);
    this.problems = facts.problems;
  }
}

/** A remote server refused or failed; the message is the server's one-line reason. */
export class RemoteError extends ButtersinkError {
  override readonly code = 'REMOTE';
  /** The remote command's exit status, when it exited (127: the command was not found). */
  readonly exitCode: number | undefined;
  constructor(message: string, options: ButtersinkErrorOptions & { exitCode?: number } = {}) {
    super(message, options);
    this.exitCode = options.exitCode;
  }
}

/** No AWS credentials could be found (environment, profile, ~/.aws, instance role). */
export class CredentialsError extends StoreError {
  override readonly code = 'NO_CREDENTIALS';
}

/** SSH host key unknown or changed; the message says how to accept it. */
export class HostKeyError extends ButtersinkError {
  override readonly code = 'HOST_KEY';
}

/**
 * Decides in one place whether an operation that failed with `err` may be retried
 * (network resets, S3 5xx/throttling). Corruption, usage and permission errors never are.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ButtersinkError) return false;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as {
    code?: unknown;
    name?: unknown;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  const transient = new Set([
    'ECONNRESET',
    'ECONNREFUSED',
    'EPIPE',
    'ETIMEDOUT',
    'EAI_AGAIN',
    'TimeoutError',
    'RequestTimeout',
    'SlowDown',
    'InternalError',
  ]);
  return (
    (typeof e.code === 'string' && transient.has(e.code)) ||
    (typeof e.name === 'string' && transient.has(e.name))
  );
}

/** One line for the user from any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err);
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
 * The first error of class `type` in `err`'s cause chain ({@link causes}:
 * `err` itself first), or undefined. How callers choose by class an error that
 * a wrapper such as {@link TransferError} carries as its `cause`.
 */
export function findCause<T>(
  err: unknown,
  type: abstract new (...args: never[]) => T,
): T | undefined {
  return causes(err).find((e): e is T => e instanceof type);
}

/**
 * A planned transfer failed. The message is one line naming the snapshot,
 * `<path>: <the cause's line>`; the error that failed it is kept, unchanged, as
 * `cause` (choose by its class with {@link findCause}, never by the text).
 */
export class TransferError extends ButtersinkError {
  override readonly code = 'TRANSFER';
  /** The path of the snapshot the transfer was to create. */
  readonly path: string;
  constructor(path: string, cause: unknown) {
    const line = describeError(cause);
    super(line.startsWith(`${path}: `) ? line : `${path}: ${line}`, { cause });
    this.path = path;
  }
}

/**
 * `btrfs receive` failed or was torn down. `partialPath` names the subvolume it
 * created and left incomplete, when there is one (it did not exist before this
 * receive started and exists now): the caller renames or deletes it. `cause` is
 * why (the receive's own failure, or the error/abort that tore the stage down).
 */
export class ReceiveError extends CommandError {
  /** Absolute path of the incomplete subvolume left behind, when there is one. */
  readonly partialPath: string | undefined;
  constructor(
    message: string,
    facts: {
      command: string;
      exitCode?: number | undefined;
      stderr?: string;
      partialPath?: string | undefined;
    },
    options: ButtersinkErrorOptions = {},
  ) {
    super(message, facts, options);
    this.partialPath = facts.partialPath;
  }
}

/**
 * An encrypted (age) object could not be decrypted: no identity given matches its
 * recipients (`reason` `identity`), or its bytes failed authentication or the age
 * format (`reason` `auth`): the object was changed or damaged. Nothing decrypted
 * from a failed chunk is ever handed on.
 */
export class DecryptError extends ButtersinkError {
  override readonly code = 'DECRYPT';
  readonly reason: 'identity' | 'auth';
  constructor(message: string, reason: 'identity' | 'auth', options: ButtersinkErrorOptions = {}) {
    super(message, options);
    this.reason = reason;
  }
}
