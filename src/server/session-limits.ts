/**
 * Time limits of a `buttersink --server` session, so that a client that went
 * silent, stopped reading, or never ends cannot hold a server process (and its
 * session slot, its `btrfs` children) forever.
 */
import { TimeoutError } from '../wire/frame.js';

/** Default idle limit: seconds the client may send (or read) nothing while the server waits for it. */
export const DEFAULT_IDLE_SECONDS = 600;
/** Default overall limit: seconds a session may last. */
export const DEFAULT_MAX_SECONDS = 24 * 60 * 60;
/** Largest limit accepted, seconds (what a Node timer can wait). */
export const MAX_LIMIT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * A limit in seconds as milliseconds for a timer: `seconds` when given, else
 * `fallback`; 0 means no limit; capped at {@link MAX_LIMIT_SECONDS}.
 */
export function limitMs(seconds: number | undefined, fallback: number): number {
  const s = seconds ?? fallback;
  if (!(s > 0)) return 0;
  return Math.round(Math.min(s, MAX_LIMIT_SECONDS) * 1000);
}

/** The error that ends a session that reached its overall limit of `ms`. */
export function sessionTimeLimitError(ms: number): TimeoutError {
  return new TimeoutError(
    `session time limit of ${ms / 1000} s reached (max-seconds); closing the session`,
  );
}
