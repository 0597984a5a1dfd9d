/**
 * Store locks: one run at a time per destination. Two runs writing one
 * destination at once (overlapping cron jobs) would remove each other's
 * in-progress `*.part` receives and resume each other's live uploads; the
 * second run instead fails at once, naming the run that holds the lock.
 *
 * A lock records its holder ({@link LockHolder}: pid, host, start time,
 * command). A holder on this host whose process is gone (or whose pid now
 * belongs to another process, or that ran before the last boot) is dead: its
 * lock is stale and the next run takes it over. A holder on another host
 * cannot be checked and counts as alive; the error says which file to remove.
 *
 * This module holds what every lock shares (holder records, liveness, the
 * one-line messages, {@link StoreLock}) and the lock file of a directory
 * store ({@link acquireFileLock}, `<dir>/.buttersink.lock`). The S3 lock
 * object is in `s3/s3-lock.ts`.
 *
 * The lock file is never written in place: the holder record is written to a
 * private temporary file (created `O_CREAT | O_EXCL | O_NOFOLLOW`) and
 * hard-linked to the lock name, so the lock appears atomically and always
 * complete, and `link()` fails with EEXIST on anything already there (also a
 * symlink, which it never follows). A stale lock is removed only by the one
 * run that first claims it: the claim is a marker file named after that lock
 * file's inode and content (created by `link()` too, so exactly one run gets
 * it), and the claimant unlinks the lock only if it is still that same file.
 * It then links its own lock like any run, so a fresh lock made meanwhile by
 * a third run wins and the claimant fails as usual.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, lstatSync, readFileSync, readlinkSync, unlinkSync } from 'node:fs';
import { link, lstat, open, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError, describeError } from '../errors.js';
import { debug, warn } from '../log.js';
import type { StoreOpOptions } from './store.js';

/** Name of the lock file in a directory store. */
export const LOCK_FILE_NAME = '.buttersink.lock';

/** Who holds a lock: the JSON content of a lock file or lock object. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  /** When the run took the lock (ISO 8601). */
  readonly started: string;
  /** The holder's command line, for people reading the lock. */
  readonly command?: string;
  /** When the lock lapses unless refreshed (ISO 8601; S3 locks only). */
  readonly expires?: string;
  /** Random, distinguishes two locks of one pid. */
  readonly token?: string;
  /** The holder's `/proc/sys/kernel/random/boot_id`: a lock from before the last boot is dead. */
  readonly boot?: string;
  /** The holder's pid namespace (`/proc/self/ns/pid` link), so a pid is only checked where it means something. */
  readonly pidns?: string;
  /** Start time of the holder's process (`/proc/<pid>/stat` field 22), so a reused pid is not taken for it. */
  readonly pidStart?: string;
}

/** Options of a store's `lock()`. */
export interface LockOptions extends StoreOpOptions {
  /** Command line recorded in the lock. Default: this process's arguments. */
  command?: string;
}

/** A held lock. */
export interface StoreLock {
  /** Where the lock is (a path or an `s3://` URI), for messages. */
  readonly where: string;
  /** What the lock records. */
  readonly holder: LockHolder;
  /**
   * Aborted, with a {@link LockLostError} as reason, when the lock is lost
   * while held (an S3 lock that could not be refreshed, or was taken over); a
   * run stops then. A lock file is never lost.
   */
  readonly signal: AbortSignal;
  /** Gives the lock back, if it is still this run's. Idempotent; never throws (warns instead). */
  release(): Promise<void>;
}

/**
 * `lock` as a store hands it out: releasing it first calls `forget` (the store
 * drops its reference, so it may lock again), then gives the lock back.
 */
export function forgettingLock(lock: StoreLock, forget: () => void): StoreLock {
  return {
    where: lock.where,
    holder: lock.holder,
    signal: lock.signal,
    release: async () => {
      forget();
      await lock.release();
    },
  };
}

/** Another run holds the lock of a store. Nothing was changed. */
export class LockedError extends StoreError {
  override readonly code = 'LOCKED';
  /** The holder as the lock records it (undefined when the lock is unreadable). */
  readonly holder: LockHolder | undefined;
  /** The lock file or object. */
  readonly lock: string;
  constructor(message: string, facts: { holder?: LockHolder | undefined; lock: string }) {
    super(message);
    this.holder = facts.holder;
    this.lock = facts.lock;
  }
}

/** A held lock was lost (expired or taken over); the run holding it stops. */
export class LockLostError extends StoreError {
  override readonly code = 'LOCK_LOST';
}

function readOr<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** Start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`). */
function processStart(pid: number | 'self'): string | undefined {
  const stat = readOr(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (stat === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

const self = {
  boot: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()),
  pidns: readOr(() => readlinkSync('/proc/self/ns/pid')),
  pidStart: processStart('self'),
};

/** The holder record of this process, taking a lock now. */
export function newHolder(opts: { command?: string; expires?: Date } = {}): LockHolder {
  const command = (opts.command ?? process.argv.slice(1).join(' ')).slice(0, 1000);
  return {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    command,
    ...(opts.expires ? { expires: opts.expires.toISOString() } : {}),
    token: randomBytes(8).toString('hex'),
    ...(self.boot !== undefined ? { boot: self.boot } : {}),
    ...(self.pidns !== undefined ? { pidns: self.pidns } : {}),
    ...(self.pidStart !== undefined ? { pidStart: self.pidStart } : {}),
  };
}

/** Reads a lock's JSON; undefined when it is not a holder record (needs pid, host, started). */
export function parseHolder(text: string): LockHolder | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const { pid, host, started } = o;
  if (!(Number.isSafeInteger(pid) && (pid as number) > 0)) return undefined;
  if (typeof host !== 'string' || host === '' || typeof started !== 'string') return undefined;
  const str = (k: string) => (typeof o[k] === 'string' ? { [k]: o[k] as string } : {});
  return {
    pid: pid as number,
    host,
    started,
    ...str('command'),
    ...str('expires'),
    ...str('token'),
    ...str('boot'),
    ...str('pidns'),
    ...str('pidStart'),
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Whether the process that wrote `holder` still runs: `dead` only when that
 * is certain (same host, and: booted since, or the pid is gone, or the pid now
 * belongs to a process started at another time); `unknown` for another host
 * or pid namespace. Callers treat `unknown` as alive.
 */
export function holderState(holder: LockHolder): 'live' | 'dead' | 'unknown' {
  if (holder.host !== hostname()) return 'unknown';
  if (holder.boot !== undefined && self.boot !== undefined && holder.boot !== self.boot) {
    return 'dead';
  }
  if (holder.pidns !== undefined && self.pidns !== undefined && holder.pidns !== self.pidns) {
    return 'unknown';
  }
  if (!pidAlive(holder.pid)) return 'dead';
  if (holder.pidStart !== undefined) {
    const now = processStart(holder.pid);
    if (now !== undefined && now !== holder.pidStart) return 'dead';
  }
  return 'live';
}

const pad = (n: number) => String(n).padStart(2, '0');

/** A lock time for messages: local `HH:MM:SS`, with the date when it is not today. */
export function formatLockTime(iso: string, now: Date = new Date()): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso.slice(0, 40);
  const time = `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
  const day = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return day(t) === day(now) ? time : `${day(t)} ${time}`;
}

/** `(pid 1234 on host nas, since 12:01:03[, expires 13:01:03])`, without the parentheses. */
export function describeHolder(holder: LockHolder): string {
  const expires = holder.expires ? `, expires ${formatLockTime(holder.expires)}` : '';
  return `pid ${holder.pid} on host ${holder.host.slice(0, 200)}, since ${formatLockTime(holder.started)}${expires}`;
}

/**
 * The one-line error of a run that found `store` locked:
 * `/mnt/backup/: another buttersink run holds the lock (pid 1234 on host nas,
 * since 12:01:03); wait for it or remove /mnt/backup/.buttersink.lock if it is dead`.
 */
export function lockedError(
  store: string,
  holder: LockHolder | undefined,
  lock: string,
): LockedError {
  const message = holder
    ? `${store}: another buttersink run holds the lock (${describeHolder(holder)}); wait for it or remove ${lock} if it is dead`
    : `${store}: ${lock} exists but is not a readable buttersink lock; remove it if no buttersink run is using ${store}`;
  return new LockedError(message, { holder, lock });
}

// Lock files this process holds, removed at exit when a second Ctrl-C ends it with process.exit().
const heldFiles = new Map<string, number>();
let exitHookInstalled = false;

function removeHeldFilesAtExit(): void {
  for (const [path, ino] of heldFiles) {
    try {
      if (lstatSync(path).ino === ino) unlinkSync(path);
    } catch {
      // already gone
    }
  }
}

/** Options of {@link acquireFileLock}. */
export interface FileLockOptions extends LockOptions {
  /** The directory the lock guards (the lock file is created in it). */
  dir: string;
  /** The store as the user wrote it, for messages (`/mnt/backup/`). */
  label: string;
  /** Lock file name. Default {@link LOCK_FILE_NAME}. */
  name?: string;
  /** How long to wait for another run that is taking over the same stale lock, ms. Default 5000. */
  claimWaitMs?: number;
}

interface FileState {
  readonly ino: number;
  readonly text: string;
}

const MAX_LOCK_BYTES = 64 * 1024;

/** Reads a lock file without following a symlink; undefined when there is none. */
async function readLockFile(path: string, store: string): Promise<FileState | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw new StoreError(
        `${store}: ${path} is a symbolic link, not a buttersink lock; remove it`,
      );
    }
    throw new StoreError(`${store}: cannot read lock ${path}: ${describeError(err)}`, {
      cause: err,
    });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_LOCK_BYTES) return { ino: st.ino, text: '' };
    return { ino: st.ino, text: await fh.readFile('utf8') };
  } finally {
    await fh.close();
  }
}

/** Creates `path` holding `text`, `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0644. */
async function writeExclusive(path: string, text: string): Promise<void> {
  const fh = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o644,
  );
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * Removes the stale lock file `path` (as read: `stale`) if this run is the one
 * that claims it and it is still that same file. `ours` is this run's
 * temporary file, linked as the claim marker. Returns `removed`, `changed`
 * (the lock is no longer that file: look again) or `busy` (another run claims
 * it right now). A claim marker left by a claimant that died is itself
 * claimed and removed the same way.
 */
async function removeStale(
  lockPath: string,
  path: string,
  stale: FileState,
  ours: string,
  depth = 0,
): Promise<'removed' | 'changed' | 'busy'> {
  const digest = createHash('sha256').update(`${stale.ino}\n${stale.text}`).digest('hex');
  const marker = `${lockPath}.takeover-${digest.slice(0, 16)}`;
  try {
    await link(ours, marker);
  } catch (err) {
    if (errno(err) !== 'EEXIST') throw err;
    const claim = await readLockFile(marker, lockPath).catch(() => undefined);
    const claimant = claim && parseHolder(claim.text);
    if (claim && claimant && depth < 2 && holderState(claimant) === 'dead') {
      debug('removing the claim of a run that died taking over a stale lock', { marker });
      await removeStale(lockPath, marker, claim, ours, depth + 1);
    }
    return 'busy';
  }
  try {
    const now = await readLockFile(path, lockPath);
    if (!now || now.ino !== stale.ino || now.text !== stale.text) return 'changed';
    await unlink(path);
    return 'removed';
  } finally {
    await unlink(marker).catch(() => undefined);
  }
}

/**
 * Takes the lock file of directory `dir` (see the module header): resolves
 * with the held lock, or rejects with a {@link LockedError} naming the holder
 * when another live run (or a run on another host) holds it. A stale lock is
 * taken over, with a warning naming the dead run. Other failures (a read-only
 * directory, a symlink at the lock name) reject with a StoreError.
 */
export async function acquireFileLock(opts: FileLockOptions): Promise<StoreLock> {
  const path = join(opts.dir, opts.name ?? LOCK_FILE_NAME);
  const holder = newHolder(opts.command !== undefined ? { command: opts.command } : {});
  const ours = `${path}.${holder.pid}.${holder.token}.tmp`;
  opts.signal?.throwIfAborted();
  try {
    await writeExclusive(ours, JSON.stringify(holder) + '\n');
  } catch (err) {
    throw new StoreError(`${opts.label}: cannot create lock ${path}: ${describeError(err)}`, {
      cause: err,
    });
  }
  try {
    await linkLockFile(opts, path, ours);
  } finally {
    await unlink(ours).catch(() => undefined);
  }
  const ino = (await lstat(path)).ino;
  heldFiles.set(path, ino);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', removeHeldFilesAtExit);
  }
  debug('lock taken', { lock: path });
  return heldFileLock(path, ino, holder, opts.label);
}

/**
 * Hard-links our claim file `ours` to the lock name `path`, taking over a
 * stale lock on the way; throws LockedError while a live run holds it, or
 * when another run keeps taking over the same stale lock past `claimWaitMs`.
 */
async function linkLockFile(opts: FileLockOptions, path: string, ours: string): Promise<void> {
  const deadline = Date.now() + (opts.claimWaitMs ?? 5000);
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      await link(ours, path);
      return;
    } catch (err) {
      if (errno(err) !== 'EEXIST') {
        throw new StoreError(`${opts.label}: cannot create lock ${path}: ${describeError(err)}`, {
          cause: err,
        });
      }
    }
    const current = await readLockFile(path, opts.label);
    if (!current) continue; // released meanwhile: try again
    const other = parseHolder(current.text);
    if (!other || holderState(other) !== 'dead') throw lockedError(opts.label, other, path);
    const r = await removeStale(path, path, current, ours);
    if (r === 'removed') {
      warn(
        'STALE_LOCK',
        `${opts.label}: taking over the lock of a run that is gone (${describeHolder(other)})`,
        { lock: path, pid: other.pid, host: other.host },
      );
    } else if (r === 'busy') {
      if (Date.now() > deadline) {
        throw new LockedError(
          `${opts.label}: another buttersink run is taking over the stale lock ${path}; try again`,
          { holder: other, lock: path },
        );
      }
      await sleep(20);
    }
  }
}

/**
 * The held lock file `path` (inode `ino`). Its release is idempotent and
 * removes the file only if it is still ours, warning when it was removed or
 * replaced meanwhile; it never throws.
 */
function heldFileLock(path: string, ino: number, holder: LockHolder, label: string): StoreLock {
  let released = false;
  return {
    where: path,
    holder,
    signal: new AbortController().signal,
    release: async () => {
      if (released) return;
      released = true;
      heldFiles.delete(path);
      try {
        const now = await readLockFile(path, label);
        if (now?.ino !== ino) {
          warn('LOCK_GONE', `${label}: ${path} was removed or replaced while this run held it`);
          return;
        }
        await unlink(path);
        debug('lock released', { lock: path });
      } catch (err) {
        warn('LOCK_RELEASE', `${label}: cannot remove lock ${path}: ${describeError(err)}`);
      }
    },
  };
}

/**
 * Works under a lock that another process of the same run holds (a server
 * session holding its client's lock): resolves when `<dir>/<name>` is held by
 * a live process with `token`, else rejects with a {@link LockedError} naming
 * whoever holds it (or saying that none does). The lock returned is borrowed:
 * its release leaves the lock file alone.
 */
export async function joinFileLock(opts: FileLockOptions & { token: string }): Promise<StoreLock> {
  const path = join(opts.dir, opts.name ?? LOCK_FILE_NAME);
  opts.signal?.throwIfAborted();
  const current = await readLockFile(path, opts.label);
  const holder = current ? parseHolder(current.text) : undefined;
  if (!holder || holder.token !== opts.token || holderState(holder) !== 'live') {
    if (holder && holder.token !== opts.token) throw lockedError(opts.label, holder, path);
    throw new LockedError(
      `${opts.label}: the lock this run took (${path}) is no longer held; run again`,
      { holder, lock: path },
    );
  }
  debug('lock joined', { lock: path, pid: holder.pid });
  return {
    where: path,
    holder,
    signal: new AbortController().signal,
    release: () => Promise.resolve(),
  };
}
