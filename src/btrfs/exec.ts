/**
 * The single place that spawns `btrfs` (btrfs-progs). Every other module calls
 * {@link runBtrfs} (small text output, buffered) or {@link spawnBtrfs} (byte
 * streams, never buffered). Failures become typed errors: {@link CommandError}
 * with the command line, exit code and the tail of stderr; a missing binary, a
 * missing privilege or a path that is not on btrfs get their own message.
 */
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  AbortedError,
  ButtersinkError,
  CommandError,
  NotBtrfsError,
  NotRootError,
} from '../errors.js';
import { debug } from '../log.js';
import { startChild, type ChildEnd } from './child.js';

let btrfsArgv: readonly string[] = ['btrfs'];

/**
 * Replaces the command used to run btrfs-progs, e.g. `['sudo', '-n', 'btrfs']`.
 * Process-wide; returns the previous command so a caller can restore it.
 * Default `['btrfs']`, looked up on PATH.
 */
export function setBtrfsCommand(argv: readonly string[]): readonly string[] {
  if (argv.length === 0 || argv.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('setBtrfsCommand: argv must be a non-empty list of non-empty strings');
  }
  const prev = btrfsArgv;
  btrfsArgv = [...argv];
  return prev;
}

/** The command line (for messages and logs) that runs `btrfs` with `args`. */
export function btrfsCommandLine(args: readonly string[]): string {
  return [...btrfsArgv, ...args].map(quoteArg).join(' ');
}

/** True when this process runs as root (uid 0). Always false where uids do not exist. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Options of {@link runBtrfs}. */
export interface RunBtrfsOptions {
  /** Aborting kills the command (SIGTERM) and rejects with {@link AbortedError}. */
  signal?: AbortSignal;
  /** Extra environment variables (merged over `process.env`). */
  env?: Record<string, string>;
}

/** What a successful {@link runBtrfs} returns. */
export interface BtrfsOutput {
  stdout: string;
  stderr: string;
}

/**
 * Runs `btrfs ...args` to completion with stdout and stderr buffered as text
 * (for listings and administrative commands whose output is small).
 * Resolves only on exit code 0; rejects with the error {@link btrfsFailure} maps.
 */
export async function runBtrfs(
  args: readonly string[],
  opts: RunBtrfsOptions = {},
): Promise<BtrfsOutput> {
  opts.signal?.throwIfAborted();
  const [file, ...pre] = btrfsArgv as [string, ...string[]];
  debug('exec', { argv: [...btrfsArgv, ...args] });
  const started = startChild(file, [...pre, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...opts.env, LC_ALL: 'C' },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const [end, stdout, stderr] = await Promise.all([
    started.ended,
    readAll(started.process.stdout),
    readAll(started.process.stderr),
  ]);
  if (succeeded(end)) return { stdout, stderr };
  throw btrfsFailure(args, factsOf(end, stderr, opts.signal));
}

/** True when the child exited with code 0 and was not cancelled. */
function succeeded(end: ChildEnd): boolean {
  return end.exitCode === 0 && !end.canceled;
}

/** The failure facts of a child that did not succeed. */
function factsOf(end: ChildEnd, stderr: string, signal?: AbortSignal): BtrfsFailureFacts {
  return {
    exitCode: end.exitCode,
    signal: end.signal,
    stderr,
    spawnCode: end.spawnCode,
    canceled: end.canceled,
    cause: end.error ?? end,
    abortReason: signal?.reason,
  };
}

/** All of `stream` as text ('' without one). Never rejects. */
async function readAll(stream: Readable | null): Promise<string> {
  if (!stream) return '';
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    text += chunk;
  });
  await finished(stream).catch(() => undefined);
  return text;
}

/** Options of {@link spawnBtrfs}. */
export interface SpawnBtrfsOptions {
  /**
   * `'pipe'` to write the child's stdin (btrfs receive). Default `'ignore'`. A
   * Readable backed by a file descriptor (another child's stdout) is handed to
   * the child as its stdin directly: this process reads none of its bytes.
   */
  stdin?: 'pipe' | 'ignore' | Readable;
  /** `'pipe'` to read the child's stdout (btrfs send). Default `'ignore'`. */
  stdout?: 'pipe' | 'ignore';
  /** Aborting kills the child (SIGTERM); {@link BtrfsChild.done} rejects with {@link AbortedError}. */
  signal?: AbortSignal;
  /** Called with each complete stderr line as it arrives (e.g. receive's "At subvol NAME"). */
  onStderrLine?: (line: string) => void;
  /**
   * Called with each complete stdout line (btrfs-progs 6.2 receive prints "At
   * snapshot NAME" on stdout). Setting it pipes stdout and consumes it here:
   * {@link BtrfsChild.stdout} is then undefined. Exclusive with `stdout: 'pipe'`.
   */
  onStdoutLine?: (line: string) => void;
}

/** A running `btrfs` child whose stdio is streamed. */
export interface BtrfsChild {
  /** The command line, for messages. */
  readonly command: string;
  /** Process id, undefined when the spawn failed. */
  readonly pid: number | undefined;
  /** The child's stdin when spawned with `stdin: 'pipe'`. */
  readonly stdin: Writable | undefined;
  /** The child's stdout when spawned with `stdout: 'pipe'`. */
  readonly stdout: Readable | undefined;
  /** True once the child has exited (or failed to spawn) and stderr was read to its end. */
  readonly exited: boolean;
  /** The last 64 KiB of stderr read so far. */
  stderrTail(): string;
  /**
   * Sends `signal` (default SIGTERM, which `sudo` relays; SIGKILL follows after
   * 5 s) unless the child has exited. Returns immediately; await {@link done} to reap.
   */
  kill(signal?: NodeJS.Signals): void;
  /**
   * Settles once the child exited and its stderr ended: resolves on exit code 0,
   * rejects with the error {@link btrfsFailure} maps otherwise. Never rejects
   * unhandled: a handler is attached at spawn time.
   */
  readonly done: Promise<void>;
}

const STDERR_TAIL = 64 * 1024;

/**
 * Starts `btrfs ...args` with streamed stdio; stderr
 * is always read (kept as a bounded tail) so the child never blocks on it.
 */
export function spawnBtrfs(args: readonly string[], opts: SpawnBtrfsOptions = {}): BtrfsChild {
  return spawnProgram(btrfsArgv, args, opts, btrfsFailure);
}

/**
 * Starts `argv ...args` (any program, e.g. `zstd`) as {@link spawnBtrfs} starts
 * `btrfs`: streamed stdio, bounded stderr tail, kill that `done` reaps. A failure
 * becomes `failure(args, facts)` (default: {@link programFailure} naming the program).
 */
export function spawnProgram(
  argv: readonly string[],
  args: readonly string[],
  opts: SpawnBtrfsOptions = {},
  failure: (args: readonly string[], facts: BtrfsFailureFacts) => Error = (a, f) =>
    programFailure(argv, a, f),
): BtrfsChild {
  const [file, ...pre] = argv as [string, ...string[]];
  const command = [...argv, ...args].map(quoteArg).join(' ');
  debug('spawn', { argv: [...argv, ...args] });
  if (opts.onStdoutLine && opts.stdout === 'pipe') {
    throw new TypeError('spawnBtrfs: onStdoutLine and stdout: "pipe" are exclusive');
  }
  const started = startChild(file, [...pre, ...args], {
    stdio: [opts.stdin ?? 'ignore', opts.onStdoutLine ? 'pipe' : (opts.stdout ?? 'ignore'), 'pipe'],
    env: { LC_ALL: 'C' },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const sub = started.process;
  let tail = '';
  const stderr = sub.stderr;
  stderr?.setEncoding('utf8');
  stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL);
  });
  const waits = [stderr ? readLines(stderr, opts.onStderrLine) : Promise.resolve()];
  if (opts.onStdoutLine && sub.stdout) waits.push(readLines(sub.stdout, opts.onStdoutLine));
  // Wait for the end of the read stdio too, so every line was seen.
  const stdioDone = Promise.all(waits);
  let exited = false;
  const done = (async () => {
    const end = await started.ended;
    await stdioDone;
    exited = true;
    if (succeeded(end)) return;
    throw failure(args, factsOf(end, tail, opts.signal));
  })();
  done.catch(() => undefined);
  return {
    command,
    pid: sub.pid,
    stdin: sub.stdin ?? undefined,
    stdout: opts.onStdoutLine ? undefined : (sub.stdout ?? undefined),
    get exited() {
      return exited;
    },
    stderrTail: () => tail,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (!exited) started.kill(signal);
    },
    done,
  };
}

/**
 * Maps a failed run of `argv ...args` (a program other than btrfs) to the error a
 * user should see: {@link AbortedError} when cancelled; {@link CommandError}
 * "<program> not installed" when the binary is missing; else {@link CommandError}
 * with the command line, how it ended and the last stderr lines.
 */
export function programFailure(
  argv: readonly string[],
  args: readonly string[],
  facts: BtrfsFailureFacts,
): ButtersinkError {
  const command = [...argv, ...args].map(quoteArg).join(' ');
  if (facts.canceled) {
    const reason = facts.abortReason;
    if (reason instanceof AbortedError) return reason;
    return new AbortedError(`${command}: cancelled`, { cause: reason ?? facts.cause });
  }
  const name = argv[0] ?? 'program';
  if (facts.spawnCode === 'ENOENT') {
    return new CommandError(
      `${name} not installed: cannot run ${name} (install the ${name} package)`,
      { command, stderr: facts.stderr },
      { cause: facts.cause },
    );
  }
  return new CommandError(
    failedLine(command, facts),
    { command, exitCode: facts.exitCode, stderr: facts.stderr },
    { cause: facts.cause },
  );
}

/** `<command> failed (exit code 1): <last stderr lines>`: how a command ended, in one line. */
function failedLine(command: string, facts: BtrfsFailureFacts): string {
  const last = lastLines(facts.stderr, 3);
  const how =
    facts.exitCode !== undefined
      ? `exit code ${facts.exitCode}`
      : facts.signal
        ? `killed by ${facts.signal}`
        : (facts.spawnCode ?? 'failed');
  return `${command} failed (${how})${last ? ': ' + last.replace(/\n/g, ' / ') : ''}`;
}

/** Reads `stream` to its end, calling `onLine` per line when given. Never rejects. */
async function readLines(stream: Readable, onLine?: (line: string) => void): Promise<void> {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    if (!onLine) return;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  await finished(stream).catch(() => undefined);
  if (partial && onLine) onLine(partial);
}

/** Facts about a failed btrfs command, as {@link btrfsFailure} needs them. */
export interface BtrfsFailureFacts {
  exitCode?: number | undefined;
  signal?: string | undefined;
  stderr: string;
  /** Error code of a failed spawn (`ENOENT`: binary missing). */
  spawnCode?: string | undefined;
  /** True when the command was cancelled through its AbortSignal. */
  canceled?: boolean;
  cause?: unknown;
  abortReason?: unknown;
}

/**
 * Maps a failed `btrfs` command to the error a user should see:
 * {@link AbortedError} when cancelled; {@link CommandError} "btrfs-progs not installed"
 * when the binary is missing; {@link NotRootError} on "Operation not permitted" when
 * not root; {@link NotBtrfsError} on "not a btrfs filesystem" / "not a subvolume";
 * else {@link CommandError} with the command line, exit code and stderr tail.
 */
export function btrfsFailure(args: readonly string[], facts: BtrfsFailureFacts): ButtersinkError {
  const command = btrfsCommandLine(args);
  if (facts.canceled) {
    const reason = facts.abortReason;
    if (reason instanceof AbortedError) return reason;
    return new AbortedError(`${command}: cancelled`, { cause: reason ?? facts.cause });
  }
  if (facts.spawnCode === 'ENOENT') {
    return new CommandError(
      `btrfs-progs not installed: cannot run ${btrfsArgv[0] ?? 'btrfs'} (install the btrfs-progs package)`,
      { command, stderr: facts.stderr },
      { cause: facts.cause },
    );
  }
  const stderr = facts.stderr;
  const cmdErr = new CommandError(
    failedLine(command, facts),
    { command, exitCode: facts.exitCode, stderr },
    { cause: facts.cause },
  );
  if (/Operation not permitted|EPERM|must be root|Permission denied/i.test(stderr) && !isRoot()) {
    return new NotRootError('must be root to access a btrfs filesystem', { cause: cmdErr });
  }
  const notBtrfs = /not a btrfs filesystem[^\n]*|not a subvolume[^\n]*/i.exec(stderr);
  if (notBtrfs) {
    return new NotBtrfsError(`${notBtrfs[0].replace(/^ERROR:\s*/i, '')}`, { cause: cmdErr });
  }
  return cmdErr;
}

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-n)
    .join('\n');
}

function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
