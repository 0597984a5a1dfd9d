/**
 * `buttersink --server --mode r|a|w <path>`: the process an SSH client starts
 * on the remote host (usually through `sudo`, one sudoers line per mode). It
 * speaks the protocol on stdin/stdout and logs to stderr only: stdout is the
 * data channel. SIGTERM, SIGINT and SIGHUP cancel the running operation
 * (children killed, partial receives left as `*.part`), and so does the SSH
 * channel going away (see {@link watchChannel}).
 *
 * Limits (set in the sudoers line, e.g. `--server --max-sessions 2 --mode a
 * /mnt/backup/`): `--idle-seconds` (default 600) ends a session whose client
 * sends or reads nothing for that long, `--max-seconds` (default 86400) ends
 * any session after that long, `--max-sessions` (default 32) caps concurrent
 * server sessions on this host (slot files in /run/buttersink/server-slots);
 * 0 disables a limit. `--no-compressed-data` makes the server send and accept
 * send stream protocol 1 only (and say so in its hello), as a host whose
 * btrfs-progs predates protocol 2.
 */
import { isAbsolute } from 'node:path';
import { AbortedError, describeError } from '../errors.js';
import { consoleLogger, debug, setLogger } from '../log.js';
import { isServerMode } from '../wire/protocol.js';
import type { ServerMode } from '../wire/protocol.js';
import { serveSession } from './serve-session.js';
import { MAX_LIMIT_SECONDS } from './session-limits.js';
import { DEFAULT_MAX_SESSIONS, DEFAULT_SLOTS_DIR } from './session-slots.js';

/** Parsed `--server` arguments. */
export interface ServerArgs {
  mode: ServerMode;
  root: string;
  proto?: 1 | 2;
  /** `--idle-seconds N`: idle limit (0: none). Default 600 (`DEFAULT_IDLE_SECONDS`). */
  idleSeconds?: number;
  /** `--max-seconds N`: limit per session (0: none). Default 86400 (`DEFAULT_MAX_SECONDS`). */
  maxSeconds?: number;
  /** `--max-sessions N`: concurrent sessions on this host (0: none). Default 32 (`DEFAULT_MAX_SESSIONS`). */
  maxSessions?: number;
  /** `--no-compressed-data`: send stream protocol 1 only, both ways (see ServeSessionOptions). */
  compressedData?: false;
}

/** Options that take a value, and the largest value of the numeric ones. */
const VALUE_OPTIONS: Readonly<Record<string, number | undefined>> = {
  '--mode': undefined,
  '--proto': undefined,
  '--idle-seconds': MAX_LIMIT_SECONDS,
  '--max-seconds': MAX_LIMIT_SECONDS,
  '--max-sessions': 10_000,
};

/**
 * Parses `--server --mode r|a|w [--proto 1|2] [--no-compressed-data] [--idle-seconds N]
 * [--max-seconds N] [--max-sessions N] <path>` (in any order, `--opt V` or `--opt=V`). Returns
 * a one-line reason instead of arguments when they are wrong: the mode is
 * required, the path must be absolute, limits are whole numbers, nothing else
 * is accepted.
 */
export function parseServerArgs(argv: readonly string[]): ServerArgs | string {
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--server') continue;
    if (a === '--no-compressed-data') {
      values.set(a, '');
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (name in VALUE_OPTIONS) {
      const v = name === a ? argv[++i] : a.slice(eq + 1);
      if (v === undefined) return `${name} needs a value`;
      values.set(name, v);
    } else if (a.startsWith('-')) return `unknown server option ${a}`;
    else rest.push(a);
  }
  const mode = values.get('--mode');
  const proto = values.get('--proto');
  if (!isServerMode(mode)) return `--mode must be r, a or w`;
  if (rest.length !== 1 || !isAbsolute(rest[0]!)) return 'expected one absolute <path> to serve';
  if (proto !== undefined && proto !== '1' && proto !== '2') return '--proto must be 1 or 2';
  const args: ServerArgs = {
    mode,
    root: rest[0]!,
    ...(proto ? { proto: Number(proto) as 1 | 2 } : {}),
    ...(values.has('--no-compressed-data') ? { compressedData: false as const } : {}),
  };
  const fields = {
    '--idle-seconds': 'idleSeconds',
    '--max-seconds': 'maxSeconds',
    '--max-sessions': 'maxSessions',
  } as const;
  for (const [name, field] of Object.entries(fields)) {
    const v = values.get(name);
    if (v === undefined) continue;
    const max = VALUE_OPTIONS[name]!;
    if (!/^\d{1,10}$/.test(v) || Number(v) > max) {
      return `${name} must be a whole number from 0 (no limit) to ${max}`;
    }
    args[field] = Number(v);
  }
  return args;
}

/** Options of {@link serverMain} for tests. */
export interface ServerMainOptions {
  /** Directory of the session slots. Default {@link DEFAULT_SLOTS_DIR}. */
  slotsDir?: string;
}

/** How long output the client does not read may keep the process alive after the session ended. */
const PENDING_OUTPUT_GRACE_MS = 30_000;

/** How often a session that moved no byte checks that its channel is still there. */
export const CHANNEL_CHECK_MS = 2000;

/**
 * Calls `onClosed` once when the client's channel is gone, even while the
 * session moves no byte (its `btrfs send`/`receive` stopped or slow, so nothing
 * reads stdin or writes stdout). sshd signals nothing to a command run without a
 * terminal when the client disconnects or closes the channel: it only closes
 * the command's stdin, stdout and stderr, and a process that is not reading or
 * writing never notices. So every {@link CHANNEL_CHECK_MS} in which neither
 * stdin nor stdout moved, one newline goes to stderr (the client drops blank
 * lines); once sshd closed it, that write fails (EPIPE). Returns the stop function.
 */
export function watchChannel(
  stdin: NodeJS.ReadableStream,
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
  onClosed: (err: Error) => void,
): () => void {
  let closed = false;
  const gone = (err: unknown) => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    onClosed(
      new AbortedError(`the client's channel closed (${describeError(err)}); stopping`, {
        cause: err,
      }),
    );
  };
  // Once stderr failed, later writes (log lines) fail too: never an uncaught error.
  const onError = (err: Error) => gone(err);
  stderr.on('error', onError);
  const moved = () =>
    `${(stdin as { bytesRead?: number }).bytesRead}/${(stdout as { bytesWritten?: number }).bytesWritten}`;
  let last = moved();
  const timer = setInterval(() => {
    const now = moved();
    if (now !== last) {
      last = now;
      return;
    }
    stderr.write('\n', (err?: Error | null) => {
      if (err) gone(err);
    });
  }, CHANNEL_CHECK_MS);
  timer.unref();
  return () => {
    closed = true;
    clearInterval(timer);
  };
}

/** Runs the server on this process's stdin/stdout; resolves with the exit code. */
export async function serverMain(
  argv: readonly string[],
  stderr: NodeJS.WritableStream = process.stderr,
  opts: ServerMainOptions = {},
): Promise<number> {
  const args = parseServerArgs(argv);
  if (typeof args === 'string') {
    stderr.write(`buttersink --server: ${args}\n`);
    return 2;
  }
  // stdout carries frames: anything printed by mistake must go to stderr instead.
  console.log = console.info = console.debug = console.error;
  const previous = setLogger(consoleLogger({}));
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => controller.abort(new Error(`server got ${name}`));
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const stopWatching = watchChannel(process.stdin, process.stdout, stderr, (err) => {
    debug('server channel closed', { error: describeError(err) });
    controller.abort(err);
  });
  let code = 1;
  try {
    const maxSessions = args.maxSessions ?? DEFAULT_MAX_SESSIONS;
    code = await serveSession({
      input: process.stdin,
      output: process.stdout,
      mode: args.mode,
      root: args.root,
      signal: controller.signal,
      forwardWarnings: true,
      endOutput: false,
      ...(args.proto ? { proto: args.proto } : {}),
      ...(args.compressedData === false ? { compressedData: false } : {}),
      ...(args.idleSeconds !== undefined ? { idleSeconds: args.idleSeconds } : {}),
      ...(args.maxSeconds !== undefined ? { maxSeconds: args.maxSeconds } : {}),
      ...(maxSessions > 0
        ? { sessionSlots: { dir: opts.slotsDir ?? DEFAULT_SLOTS_DIR, max: maxSessions } }
        : {}),
    });
    return code;
  } finally {
    stopWatching();
    // Nothing more is read: let the process exit even if the client keeps its end open.
    process.stdin.destroy();
    // A pending write to a client that stopped reading would keep the process alive for ever.
    if (process.stdout.writableLength > 0) {
      setTimeout(() => process.exit(code), PENDING_OUTPUT_GRACE_MS).unref();
    }
    for (const s of signals) process.off(s, onSignal);
    setLogger(previous);
  }
}
