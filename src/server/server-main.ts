/**
 * `buttersink --server --mode r|a|w <path>`: the process an SSH client starts
 * on the remote host (usually through `sudo`, one sudoers line per mode). It
 * speaks the protocol on stdin/stdout and logs to stderr only: stdout is the
 * data channel. SIGTERM, SIGINT and SIGHUP cancel the running operation
 * (children killed, partial receives left as `*.part`).
 */
import { isAbsolute } from 'node:path';
import { consoleLogger, setLogger } from '../log.js';
import { isServerMode } from './protocol.js';
import type { ServerMode } from './protocol.js';
import { serveSession } from './serve-session.js';

/** Parsed `--server` arguments. */
export interface ServerArgs {
  mode: ServerMode;
  root: string;
  proto?: 1 | 2;
}

/**
 * Parses `--server --mode r|a|w [--proto 1|2] <path>` (in any order). Returns
 * a one-line reason instead of arguments when they are wrong: the mode is
 * required, the path must be absolute, nothing else is accepted.
 */
export function parseServerArgs(argv: readonly string[]): ServerArgs | string {
  let mode: string | undefined;
  let proto: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--server') continue;
    if (a === '--mode' || a === '--proto') {
      const v = argv[++i];
      if (v === undefined) return `${a} needs a value`;
      if (a === '--mode') mode = v;
      else proto = v;
    } else if (a.startsWith('--mode=')) mode = a.slice(7);
    else if (a.startsWith('-')) return `unknown server option ${a}`;
    else rest.push(a);
  }
  if (!isServerMode(mode)) return `--mode must be r, a or w`;
  if (rest.length !== 1 || !isAbsolute(rest[0]!)) return 'expected one absolute <path> to serve';
  if (proto !== undefined && proto !== '1' && proto !== '2') return '--proto must be 1 or 2';
  return { mode, root: rest[0]!, ...(proto ? { proto: Number(proto) as 1 | 2 } : {}) };
}

/** Runs the server on this process's stdin/stdout; resolves with the exit code. */
export async function serverMain(
  argv: readonly string[],
  stderr: NodeJS.WritableStream = process.stderr,
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
  try {
    return await serveSession({
      input: process.stdin,
      output: process.stdout,
      mode: args.mode,
      root: args.root,
      signal: controller.signal,
      forwardWarnings: true,
      endOutput: false,
      ...(args.proto ? { proto: args.proto } : {}),
    });
  } finally {
    // Nothing more is read: let the process exit even if the client keeps its end open.
    process.stdin.destroy();
    for (const s of signals) process.off(s, onSignal);
    setLogger(previous);
  }
}
