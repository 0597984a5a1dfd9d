/**
 * Sink stage: `btrfs receive DIR` fed from the stream; one send stream, one
 * received subvolume.
 *
 * Buffering and backpressure: each written chunk is passed to the child's
 * stdin and the write callback waits for `drain` when the pipe is full, so at
 * most the writable's highWaterMark (256 KiB) plus the pipe buffer is held.
 *
 * Confinement: `btrfs receive -C` chroots into `dir` before reading the
 * stream, so whatever path or symlink a stream names resolves inside `dir`
 * (parents and clone sources are still opened from the filesystem's root:
 * pin them, see uuid-rewrite's `pinParent`, and guard the stream).
 *
 * Completion: the stream finishes only after stdin was ended and `btrfs
 * receive` exited 0 (it then has set the received UUID and made the subvolume
 * read-only). `-e` is not used: the receiver reads to EOF, so trailing bytes
 * are its error, not a broken pipe of ours. The subvolume's name comes from the
 * receiver's "At subvol NAME" (stderr) / "At snapshot NAME" (stdout, 6.2) line.
 *
 * Teardown: destroying the stream (or aborting `signal`) KILLS the receiver
 * (SIGTERM, relayed by `sudo`; SIGKILL after 5 s) before its stdin is closed,
 * because an EOF could let a lenient receiver finish a truncated stream
 * (formats.md). `close` is emitted once the child has been reaped. `result` then
 * rejects with a {@link ReceiveError} whose `partialPath` names the incomplete
 * subvolume, when one was left.
 *
 * Where no stage needs to look at the bytes, {@link spawnBtrfsReceive} starts
 * the same command reading another process's stdout directly (see
 * `streams/os-pipe.ts`) and {@link receiveFailure} words its failure the same way.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { AbortedError, CommandError, ReceiveError, UsageError, describeError } from '../errors.js';
import { btrfsCommandLine, spawnBtrfs } from '../btrfs/exec.js';
import type { BtrfsChild } from '../btrfs/exec.js';
import { requireBtrfs } from '../btrfs/mountinfo.js';
import { debug } from '../log.js';
import type { SinkStage, StageOptions } from '../streams/stage.js';
import { killAndReap } from './btrfs-child.js';

/** Options of {@link btrfsReceive}. */
export interface BtrfsReceiveOptions extends StageOptions {
  /** Existing directory on btrfs where the subvolume is created. */
  dir: string;
}

/** The subvolume a successful {@link btrfsReceive} created. */
export interface ReceivedSubvolume {
  /** Absolute path of the received subvolume (real path of `dir` + name). */
  path: string;
  /** Its name inside `dir`, as named in the stream. */
  name: string;
}

/** The stage {@link btrfsReceive} returns. */
export interface BtrfsReceiveStage extends SinkStage<ReceivedSubvolume> {
  /** Process id of `btrfs receive` once started, else undefined. */
  readonly pid: number | undefined;
}

const HIGH_WATER_MARK = 256 * 1024;
const AT_LINE = /^At (?:subvol|snapshot) (.+)$/;

// -C: the receiver chroots into `dir`, so no path or symlink can lead out of it.
const receiveArgs = (dir: string) => ['receive', '-C', dir];

/**
 * Starts `btrfs receive -C dir` (`dir` a real path on btrfs) reading `stdin`:
 * `'pipe'` to write it from here, or another process's stdout handed over
 * directly. `onName` is called once with the subvolume name the receiver
 * announces ("At subvol NAME" on stderr, "At snapshot NAME" on stdout in 6.2).
 */
export function spawnBtrfsReceive(
  dir: string,
  stdin: 'pipe' | Readable,
  onName: (name: string) => void,
): BtrfsChild {
  let named = false;
  const onLine = (line: string) => {
    const m = AT_LINE.exec(line);
    if (m?.[1] !== undefined && !named) {
      named = true;
      onName(m[1]);
    }
    debug('btrfs receive', { line });
  };
  return spawnBtrfs(receiveArgs(dir), { stdin, onStderrLine: onLine, onStdoutLine: onLine });
}

/**
 * The {@link ReceiveError} for a receive into `dir` that failed with `cause`:
 * the receiver's own ERROR lines (e.g. "No space left on device") when it
 * failed, and the partial subvolume it left, when there is one.
 */
export function receiveFailure(
  child: BtrfsChild | undefined,
  dir: string,
  cause: unknown,
  partialPath: string | undefined,
): ReceiveError {
  const stderr = child?.stderrTail() ?? '';
  const exitCode = cause instanceof CommandError ? cause.exitCode : undefined;
  const errors =
    cause instanceof CommandError
      ? stderr
          .split('\n')
          .filter((l) => /^ERROR:/.test(l))
          .map((l) => l.replace(/^ERROR:\s*/, ''))
      : [];
  const detail = errors.length > 0 ? errors.slice(-2).join('; ') : describeError(cause);
  const where = partialPath ? ` (partial subvolume left at ${partialPath})` : '';
  return new ReceiveError(
    `btrfs receive failed: ${detail}${where}`,
    { command: btrfsCommandLine(receiveArgs(dir)), exitCode, stderr, partialPath },
    { cause },
  );
}

/** One receive: the child and what is known of it, behind the stage's Writable. */
class ReceiveRun {
  child: BtrfsChild | undefined;
  realDir: string;
  before = new Set<string>();
  name: string | undefined;
  failure: Error | undefined;
  received: ReceivedSubvolume | undefined;
  ending = false;

  constructor(
    dir: string,
    readonly signal: AbortSignal | undefined,
  ) {
    this.realDir = dir;
  }

  /** A name counts as partial only if receive created it: it did not exist before and exists now. */
  async partialPath(): Promise<string | undefined> {
    const name = this.name;
    if (name === undefined || this.before.has(name.split('/')[0] ?? name)) return undefined;
    const p = join(this.realDir, name);
    return lstat(p).then(
      () => p,
      () => undefined,
    );
  }

  async error(cause: unknown): Promise<ReceiveError> {
    return receiveFailure(this.child, this.realDir, cause, await this.partialPath());
  }

  /** Checks `dir`, notes what is in it, starts the child; destroys `stream` when it fails early. */
  async start(dir: string, stream: Writable): Promise<void> {
    this.signal?.throwIfAborted();
    this.realDir = (await requireBtrfs(dir)).realPath;
    this.before = new Set(await readdir(this.realDir));
    this.signal?.throwIfAborted();
    const c = spawnBtrfsReceive(this.realDir, 'pipe', (n) => (this.name = n));
    this.child = c;
    // EPIPE when the receiver dies: its exit status and stderr tell why, so wait for them.
    c.stdin?.on('error', () => undefined);
    c.done.catch(async (err: unknown) => {
      if (this.ending || stream.destroyed) return;
      this.failure = await this.error(err);
      stream.destroy(this.failure);
    });
  }

  write(chunk: Buffer, callback: (err?: Error) => void): void {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed) {
      callback(new Error('btrfs receive is not accepting input'));
      return;
    }
    if (stdin.write(chunk)) callback();
    else stdin.once('drain', () => callback());
  }

  /** Ends stdin and waits for the receiver: it must exit 0 having named a subvolume. */
  finish(callback: (err?: Error) => void): void {
    const c = this.child;
    if (!c) {
      callback(new Error('btrfs receive was not started'));
      return;
    }
    this.ending = true;
    c.stdin?.end();
    c.done
      .then(async () => {
        if (this.name === undefined) throw new Error('the stream held no subvolume');
        this.received = { path: join(this.realDir, this.name), name: this.name };
      })
      .then(
        () => callback(),
        async (err: unknown) => {
          this.failure = await this.error(err);
          callback(this.failure);
        },
      );
  }

  /** Settles `result` once the stream closed. */
  settle(stream: Writable, error: unknown): Promise<ReceivedSubvolume> {
    if (this.received && stream.writableFinished) return Promise.resolve(this.received);
    if (this.failure) return Promise.reject(this.failure);
    const cause =
      error ?? new AbortedError('btrfs receive was destroyed before the stream finished');
    if (!this.child) return Promise.reject(cause);
    return this.error(cause).then((e) => Promise.reject(e));
  }
}

/**
 * Receives one send stream into `opts.dir`. The child starts when the stream is
 * constructed (after `dir` was checked to be on btrfs). Requires root.
 * Throws UsageError on invalid options.
 */
export function btrfsReceive(opts: BtrfsReceiveOptions): BtrfsReceiveStage {
  if (typeof opts.dir !== 'string' || opts.dir === '') {
    throw new UsageError('btrfsReceive: dir must be a non-empty string');
  }
  const signal = opts.signal;
  const run = new ReceiveRun(opts.dir, signal);
  const aborted = () => new AbortedError('btrfs receive aborted', { cause: signal?.reason });
  const stream = new Writable({
    highWaterMark: HIGH_WATER_MARK,
    construct(callback) {
      run.start(opts.dir, stream).then(
        () => callback(),
        (err: unknown) => callback(signal?.aborted ? aborted() : (err as Error)),
      );
    },
    write: (chunk: Buffer, _encoding, callback) => run.write(chunk, callback),
    final: (callback) => run.finish(callback),
    destroy(err, callback) {
      // Kill first: closing stdin first would hand the receiver an EOF.
      if (!run.child) callback(err);
      else void killAndReap(run.child, run.child.stdin, false).then(() => callback(err));
    },
  });

  const onAbort = () => stream.destroy(aborted());
  signal?.addEventListener('abort', onAbort, { once: true });
  let error: unknown;
  stream.once('error', (err) => (error = err));
  const result = new Promise<ReceivedSubvolume>((resolve, reject) => {
    stream.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      run.settle(stream, error).then(resolve, reject);
    });
  });
  result.catch(() => undefined);

  return {
    kind: 'sink',
    name: 'btrfs-receive',
    stream,
    result,
    get pid() {
      return run.child?.pid;
    },
  };
}
