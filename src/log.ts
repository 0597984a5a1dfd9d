/**
 * Warnings and debug logging. Warnings are not errors: they go through one
 * channel (`warn(code, message, details)`), are shown to the user and appended to
 * the `--logfile` when one is set. Nothing here ever prints credentials: callers
 * pass facts, never secrets.
 */
import { appendFileSync } from 'node:fs';

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
 * A logger that prints warnings to stderr (unless `quiet`) and appends
 * warnings and debug lines, time-stamped, to `logfile` when given.
 */
export function consoleLogger(opts: { logfile?: string; quiet?: boolean } = {}): Logger {
  const append = (line: string) => {
    if (opts.logfile) appendFileSync(opts.logfile, `${new Date().toISOString()} ${line}\n`);
  };
  return {
    warn(w) {
      if (!opts.quiet) process.stderr.write(`buttersink: warning: ${w.message}\n`);
      append(`WARN ${w.code} ${w.message}${w.details ? ' ' + JSON.stringify(w.details) : ''}`);
    },
    debug(message, details) {
      append(`DEBUG ${message}${details ? ' ' + JSON.stringify(details) : ''}`);
    },
  };
}
