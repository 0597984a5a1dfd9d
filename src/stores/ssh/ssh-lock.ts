/**
 * The run lock of an SSH store. A session of its own asks the remote server to
 * take the served directory's lock (`lock`, protocol 2) and stays open until
 * the run releases it, pinging so that neither side's idle limit ends it. The
 * server holds the lock file (`<dir>/.buttersink.lock`) for exactly as long as
 * that session lives: a run that dies, or whose connection drops, loses it,
 * and a server killed outright leaves a stale lock (its pid gone) that the
 * next run takes over, as for a local lock. The run's receives and deletes on
 * other sessions carry the lock's token and work under it.
 */
import { describeError } from '../../errors.js';
import { debug, warn } from '../../log.js';
import { RemoteOperationError } from '../../wire/protocol.js';
import { LockLostError, LockedError, newHolder, parseHolder } from '../lock.js';
import type { LockHolder, StoreLock } from '../lock.js';
import type { RemoteSession } from './remote-session.js';

/** A remote run lock: a {@link StoreLock} with the token the run's requests carry. */
export interface RemoteRunLock extends StoreLock {
  /** The lock's token, undefined when the remote speaks protocol 1 (per-operation locks only). */
  readonly token: string | undefined;
}

/** Options of {@link holdRemoteLock}. */
export interface RemoteLockOptions {
  /** The store as the user wrote it, for messages (`ssh://host/dir/`). */
  label: string;
  /** The run's command line, recorded in the remote lock. */
  command: string;
  /** How often the lock session is pinged, ms. Default 30 s. */
  pingMs?: number;
}

/** Default ping interval of a held remote lock. */
export const LOCK_PING_MS = 30_000;

/**
 * Takes the remote lock over `session` (which it then owns). Rejects with a
 * {@link LockedError} naming the holder when another run holds it. With a
 * protocol 1 server, returns a lock without token: each receive and delete is
 * then locked on its own, as that server does. The lock's signal aborts with a
 * {@link LockLostError} when the lock session fails.
 */
export async function holdRemoteLock(
  session: RemoteSession,
  opts: RemoteLockOptions,
): Promise<RemoteRunLock> {
  if (session.version < 2) {
    debug('remote speaks protocol 1: no run lock, per-operation locks only', {
      store: opts.label,
    });
    await session.finish().catch(() => undefined);
    return unheldLock(opts.label);
  }
  let r: Record<string, unknown>;
  try {
    r = await session.request({ op: 'lock', command: opts.command.slice(0, 1000) });
  } catch (err) {
    await session.destroy();
    if (err instanceof RemoteOperationError && err.remoteCode === 'LOCKED') {
      throw new LockedError(err.message, { lock: `${opts.label}.buttersink.lock` });
    }
    throw err;
  }
  const token = typeof r.token === 'string' ? r.token : undefined;
  const holder = parseHolder(JSON.stringify(r.holder ?? null)) ?? newHolder();
  const where = `${opts.label}.buttersink.lock`;
  const lost = new AbortController();
  let pinging: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    pinging = session.request({ op: 'ping' }).catch(async (err: unknown) => {
      clearInterval(timer);
      await session.destroy();
      lost.abort(new LockLostError(`${opts.label}: lost the run lock: ${describeError(err)}`));
    });
  }, opts.pingMs ?? LOCK_PING_MS);
  timer.unref();
  debug('remote lock taken', { store: opts.label });
  let released = false;
  return {
    where,
    holder,
    token,
    signal: lost.signal,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await pinging;
      if (lost.signal.aborted) return;
      // Ending the session is the release: the server gives the lock back as it exits.
      await session.finish().catch((err: unknown) => {
        warn('LOCK_RELEASE', `${opts.label}: releasing the run lock: ${describeError(err)}`);
      });
    },
  };
}

/** A lock that holds nothing (a remote that takes none): each remote operation is locked on its own. */
export function unheldLock(label: string): RemoteRunLock {
  const holder: LockHolder = newHolder();
  return {
    where: label,
    holder,
    token: undefined,
    signal: new AbortController().signal,
    release: () => Promise.resolve(),
  };
}
