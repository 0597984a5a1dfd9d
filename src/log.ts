/**
 * Warnings and debug logging. Warnings are not errors: they go through one
 * channel (`warn(code, message, details)`), are shown to the user and appended to
 * the `--logfile` when one is set. Nothing here ever prints credentials: callers
 * pass facts, never secrets.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError, describeError } from './errors.js';

/** A warning as delivered to listeners. */
export interface Warning {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Receives warnings and debug lines; the CLI installs one, libraries may install their own. */
export interface Logger {
  warn(w: Warning): void;
  debug(message: string, details?: Record<string, unknown>): void;
  /** Releases what the logger holds (the log file). Idempotent; optional. */
  close?(): void;
}

let current: Logger = {
  warn: (w) => process.stderr.write(`buttersink: warning: ${w.message}\n`),
  debug: () => undefined,
};

/** Replaces the process-wide logger. Returns the previous one. */
export function setLogger(logger: Logger): Logger {
  const prev = current;
  current = logger;
  return prev;
}

/** Emits a warning. */
export function warn(code: string, message: string, details?: Record<string, unknown>): void {
  current.warn(details === undefined ? { code, message } : { code, message, details });
}

/** Emits a debug line (only kept when a logfile is set). */
export function debug(message: string, details?: Record<string, unknown>): void {
  current.debug(message, details);
}

/**
 * Opens `path` to append log lines to, as root may: `O_WRONLY | O_APPEND |
 * O_CREAT | O_NOFOLLOW`, a new file created with mode 0600 (the log holds the
 * command line, paths and host names). A symlink as the last component is
 * refused with a one-line {@link UsageError}, so a link planted there cannot
 * make buttersink append to another file. An existing file keeps its mode: it
 * is the user's file, and is deliberately not chmod-ed. Returns the descriptor.
 */
export function openLogFile(path: string): number {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;
  try {
    return openSync(path, flags, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new UsageError(`--logfile ${path}: is a symbolic link; refusing to follow it`, {
        cause: err,
      });
    }
    throw new UsageError(`--logfile ${path}: ${logFileProblem(path, err)}`, { cause: err });
  }
}

/** Why the log file cannot be opened and what to do, by the error's code. */
function logFileProblem(path: string, err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return `directory ${dirname(path)} does not exist; create it or give a path in an existing directory`;
    case 'ENOTDIR':
      return `a component of ${dirname(path)} is not a directory; give a path in an existing directory`;
    case 'EISDIR':
      return 'is a directory; give a file name, e.g. --logfile ' + join(path, 'buttersink.log');
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `cannot write there (${describeError(err)}); give a path you can write to`;
    default:
      return describeError(err);
  }
}

/**
 * A logger that prints warnings to stderr (unless `quiet`) and appends
 * warnings and debug lines, time-stamped, to `logfile` when given. The log
 * file is opened at once with {@link openLogFile} (which throws a
 * {@link UsageError} for a symlink or an unopenable path) and kept open until
 * `close()`; lines logged after `close()` are dropped.
 */
export function consoleLogger(opts: { logfile?: string; quiet?: boolean } = {}): Logger {
  let fd = opts.logfile ? openLogFile(opts.logfile) : undefined;
  const append = (line: string) => {
    if (fd !== undefined) writeSync(fd, `${new Date().toISOString()} ${line}\n`);
  };
  return {
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
    warn(w) {
      if (!opts.quiet) process.stderr.write(`buttersink: warning: ${w.message}\n`);
      append(`WARN ${w.code} ${w.message}${w.details ? ' ' + JSON.stringify(w.details) : ''}`);
    },
    debug(message, details) {
      append(`DEBUG ${message}${details ? ' ' + JSON.stringify(details) : ''}`);
    },
  };
}
