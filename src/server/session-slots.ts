/**
 * Host-wide limit on concurrent `buttersink --server` sessions: a session
 * holds one of `max` slots, each a lock file `slot-<k>` in a root-only
 * directory holding the pid of its holder.
 *
 * Taking a slot is race-free: the file is written under a private temporary
 * name (exclusive create) and then hard-linked as `slot-<k>`, which fails when
 * that name exists, so exactly one process wins a slot and a slot file always
 * carries its pid. A slot whose pid no longer runs (a server killed with
 * SIGKILL, a crash) is stale: when every slot is taken, the one process
 * holding `reclaim.lock` (taken the same way) removes stale slot files and
 * takes one. Releasing removes the file only while it still names this
 * process. Residual race: a reclaimer killed inside its millisecond-long
 * reclaim, with others breaking its lock at that very moment, can let one
 * session too many in; never too few.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, lstat, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ButtersinkError, UsageError, describeError } from '../errors.js';

/** Where the slots live by default (tmpfs: emptied at boot). */
export const DEFAULT_SLOTS_DIR = '/run/buttersink/server-slots';
/** Concurrent server sessions allowed by default. */
export const DEFAULT_MAX_SESSIONS = 32;

/** Where the slots live and how many there are. */
export interface SessionSlotsOptions {
  /** Slot directory; created mode 0700 when missing, refused when others may write to it. */
  dir: string;
  /** Number of slots, ≥ 1. */
  max: number;
}

/** The slot directory cannot be used (not creatable, not a private directory). */
export class SessionSlotsError extends ButtersinkError {
  override readonly code = 'SLOTS';
}

/** A slot held by this process. */
export interface SessionSlot {
  /** The slot file. */
  readonly path: string;
  /** Gives the slot back; idempotent, never throws. Also done synchronously at process exit. */
  release(): Promise<void>;
}

/** True when a process with `pid` exists (EPERM: it exists, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in a slot file's text, or undefined when it holds none. */
function parsePid(text: string): number | undefined {
  const m = /^(\d{1,10})\n?$/.exec(text);
  const pid = m ? Number(m[1]) : NaN;
  return pid > 0 ? pid : undefined;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Creates `dir` (0700) if needed and checks it is a directory of ours nobody else can write to. */
async function privateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await lstat(dir);
    const uid = process.geteuid?.();
    if (!st.isDirectory()) throw new Error('not a directory');
    if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
      throw new Error('owned by another user or writable by others');
    }
  } catch (err) {
    throw new SessionSlotsError(`session slot directory ${dir}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/**
 * Takes a free slot. Contract: resolves with the slot, or null when all `max`
 * slots are held by running processes; at most `max` slots are ever held at
 * once, whatever runs concurrently. Throws a {@link SessionSlotsError} when
 * the directory cannot be used.
 */
export async function acquireSessionSlot(opts: SessionSlotsOptions): Promise<SessionSlot | null> {
  if (!Number.isInteger(opts.max) || opts.max < 1) {
    throw new UsageError(`session slots: max must be a positive integer, not ${opts.max}`);
  }
  await privateDir(opts.dir);
  const text = `${process.pid}\n`;
  const tmp = join(opts.dir, `.new-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(tmp, text, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    throw new SessionSlotsError(`session slot directory ${opts.dir}: ${describeError(err)}`, {
      cause: err,
    });
  }
  try {
    const paths = Array.from({ length: opts.max }, (_, k) => join(opts.dir, `slot-${k}`));
    for (const path of paths) if (await take(tmp, path)) return held(path, text);
    // All taken: reclaim a stale one, one reclaimer at a time (see reclaimStale).
    const lock = join(opts.dir, 'reclaim.lock');
    if (!(await lockReclaim(tmp, lock))) return null;
    try {
      for (const path of paths) {
        if ((await reclaimStale(path)) && (await take(tmp, path))) return held(path, text);
      }
      return null;
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Links `tmp` as `path`: true when it was free and is now ours. */
async function take(tmp: string, path: string): Promise<boolean> {
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw new SessionSlotsError(`session slot ${path}: ${describeError(err)}`, { cause: err });
  }
}

/** The pid in the file at `path`, null when it holds none, undefined when there is no file. */
async function readPid(path: string): Promise<number | null | undefined> {
  try {
    return parsePid(await readFile(path, 'utf8')) ?? null;
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw new SessionSlotsError(`session slot ${path}: ${describeError(err)}`, { cause: err });
  }
}

/**
 * Takes the reclaim lock (`tmp`, holding our pid, linked as `lock`), waiting
 * up to about a second while a running process holds it (a reclaim takes
 * milliseconds). A lock left by a dead process is renamed away and checked
 * to be that same file (its inode), else put back. False: not taken.
 */
async function lockReclaim(tmp: string, lock: string): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await take(tmp, lock)) return true;
    const st = await lstat(lock).catch(() => undefined);
    const pid = await readPid(lock);
    if (st && pid !== undefined && (pid === null || !alive(pid))) {
      const aside = `${lock}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
      if (
        await rename(lock, aside).then(
          () => true,
          () => false,
        )
      ) {
        const moved = await lstat(aside).catch(() => undefined);
        if (moved && moved.ino !== st.ino) await link(aside, lock).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
      }
      continue;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/**
 * With the reclaim lock held: removes the slot file at `path` when the
 * process it names no longer runs. True when `path` is now free. Safe because
 * only a reclaim-lock holder removes a file it does not own, and a slot file
 * naming a dead process cannot be replaced but by removing it.
 */
async function reclaimStale(path: string): Promise<boolean> {
  const pid = await readPid(path);
  if (pid === undefined) return true;
  if (pid !== null && alive(pid)) return false;
  try {
    await unlink(path);
  } catch (err) {
    if (errno(err) !== 'ENOENT') {
      throw new SessionSlotsError(`session slot ${path}: ${describeError(err)}`, { cause: err });
    }
  }
  return true;
}

function held(path: string, text: string): SessionSlot {
  let released = false;
  const atExit = () => {
    released = true;
    try {
      if (readFileSync(path, 'utf8') === text) unlinkSync(path);
    } catch {
      // Gone already.
    }
  };
  process.once('exit', atExit);
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      process.off('exit', atExit);
      const now = await readFile(path, 'utf8').catch(() => undefined);
      if (now === text) await unlink(path).catch(() => undefined);
    },
  };
}
