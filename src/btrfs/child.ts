/**
 * One child process started with node:child_process, with what exec.ts needs
 * around it: cancellation through an AbortSignal, SIGKILL when SIGTERM is not
 * obeyed in time, and no child outliving this process. (This replaced execa,
 * which loaded 135 modules for these few lines at every start.)
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

/** How a child ended. */
export interface ChildEnd {
  /** Exit code; undefined when killed by a signal or never started. */
  exitCode?: number;
  /** The signal that killed it. */
  signal?: NodeJS.Signals;
  /** Error code of a failed start (`ENOENT`: no such program). */
  spawnCode?: string;
  /** True when it was stopped through its AbortSignal. */
  canceled: boolean;
  /** The start error, if any. */
  error?: Error;
}

/** Options of {@link startChild}. */
export interface StartChildOptions {
  /** stdin, stdout and stderr, as node:child_process takes them. */
  stdio: StdioOptions;
  /** Variables merged over `process.env`. */
  env?: Record<string, string>;
  /** Aborting sends SIGTERM; {@link ChildEnd.canceled} is then true. */
  signal?: AbortSignal;
}

/** A started child: the process, how it ended, and a kill that escalates. */
export interface StartedChild {
  readonly process: ChildProcess;
  /** Settles (never rejects) when the child exited or failed to start. */
  readonly ended: Promise<ChildEnd>;
  /** Sends `signal` unless it ended; a SIGTERM is followed by SIGKILL after 5 s. */
  kill(signal?: NodeJS.Signals): void;
}

const FORCE_KILL_AFTER_MS = 5000;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** At exit, stops children still running, so none outlives this process. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGTERM');
  });
}

/** Starts `file ...args`; see {@link StartedChild}. */
export function startChild(
  file: string,
  args: readonly string[],
  opts: StartChildOptions,
): StartedChild {
  installExitHook();
  const child = spawn(file, args, {
    stdio: opts.stdio,
    env: { ...process.env, ...opts.env },
  });
  let ended = false;
  let canceled = false;
  let forceTimer: NodeJS.Timeout | undefined;
  const kill = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    if (ended || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    if (signal === 'SIGTERM' && forceTimer === undefined) {
      forceTimer = setTimeout(() => kill('SIGKILL'), FORCE_KILL_AFTER_MS);
      forceTimer.unref();
    }
  };
  const onAbort = (): void => {
    canceled = true;
    kill('SIGTERM');
  };
  if (opts.signal?.aborted) queueMicrotask(onAbort);
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (child.pid !== undefined) live.add(child);
  // A child that exits before reading its input makes writes fail with EPIPE:
  // the consumer hears of it through its own listener and the exit status.
  child.stdin?.on('error', () => undefined);
  const result = new Promise<ChildEnd>((resolve) => {
    const settle = (end: Omit<ChildEnd, 'canceled'>): void => {
      if (ended) return;
      ended = true;
      live.delete(child);
      clearTimeout(forceTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ ...end, canceled });
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      // Also emitted when a kill fails after the exit; only a failed start counts.
      if (child.pid === undefined) settle({ spawnCode: error.code ?? 'failed', error });
    });
    child.once('exit', (code, signal) => {
      settle({
        ...(code !== null ? { exitCode: code } : {}),
        ...(signal !== null ? { signal } : {}),
      });
    });
  });
  return { process: child, ended: result, kill };
}
