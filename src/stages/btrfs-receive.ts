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
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AbortedError, CommandError, ReceiveError, UsageError, describeError } from '../errors.js';
import { btrfsCommandLine, spawnBtrfs } from '../btrfs/exec.js';
import type { BtrfsChild } from '../btrfs/exec.js';
import { requireBtrfs } from '../btrfs/mountinfo.js';
import { debug } from '../log.js';
import type { SinkStage, StageOptions } from '../streams/stage.js';

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
  let child: BtrfsChild | undefined;
  let realDir = opts.dir;
  let before = new Set<string>();
  let name: string | undefined;
  let failure: Error | undefined;
  let received: ReceivedSubvolume | undefined;
  let ending = false;
  // -C: the receiver chroots into `dir`, so no path or symlink can lead out of it.
  const args = (dir: string) => ['receive', '-C', dir];

  // A name counts as partial only if receive created it: it did not exist before and exists now.
  const partialPath = async (): Promise<string | undefined> => {
    if (name === undefined || before.has(name.split('/')[0] ?? name)) return undefined;
    const p = join(realDir, name);
    return lstat(p).then(
      () => p,
      () => undefined,
    );
  };

  const receiveError = async (cause: unknown): Promise<ReceiveError> => {
    const stderr = child?.stderrTail() ?? '';
    const p = await partialPath();
    const exitCode = cause instanceof CommandError ? cause.exitCode : undefined;
    // The receiver's own ERROR lines say what went wrong (e.g. "No space left on device").
    const errors =
      cause instanceof CommandError
        ? stderr
            .split('\n')
            .filter((l) => /^ERROR:/.test(l))
            .map((l) => l.replace(/^ERROR:\s*/, ''))
        : [];
    const detail = errors.length > 0 ? errors.slice(-2).join('; ') : describeError(cause);
    return new ReceiveError(
      `btrfs receive failed: ${detail}${p ? ` (partial subvolume left at ${p})` : ''}`,
      { command: btrfsCommandLine(args(realDir)), exitCode, stderr, partialPath: p },
      { cause },
    );
  };

  const stream = new Writable({
    highWaterMark: HIGH_WATER_MARK,
    construct(callback) {
      (async () => {
        signal?.throwIfAborted();
        realDir = (await requireBtrfs(opts.dir)).realPath;
        before = new Set(await readdir(realDir));
        signal?.throwIfAborted();
        const onLine = (line: string) => {
          const m = AT_LINE.exec(line);
          if (m?.[1] !== undefined && name === undefined) name = m[1];
          debug('btrfs receive', { line });
        };
        // 6.2 prints "At subvol NAME" on stderr but "At snapshot NAME" on stdout.
        const c = spawnBtrfs(args(realDir), {
          stdin: 'pipe',
          onStderrLine: onLine,
          onStdoutLine: onLine,
        });
        child = c;
        // EPIPE when the receiver dies: its exit status and stderr tell why, so wait for them.
        c.stdin?.on('error', () => undefined);
        c.done.catch(async (err: unknown) => {
          if (!ending && !stream.destroyed) {
            failure = await receiveError(err);
            stream.destroy(failure);
          }
        });
      })().then(
        () => callback(),
        (err: unknown) =>
          callback(
            signal?.aborted
              ? new AbortedError('btrfs receive aborted', { cause: signal.reason })
              : (err as Error),
          ),
      );
    },
    write(chunk: Buffer, _encoding, callback) {
      const stdin = child?.stdin;
      if (!stdin || stdin.destroyed) {
        callback(new Error('btrfs receive is not accepting input'));
        return;
      }
      if (stdin.write(chunk)) callback();
      else stdin.once('drain', () => callback());
    },
    final(callback) {
      const c = child;
      if (!c) {
        callback(new Error('btrfs receive was not started'));
        return;
      }
      ending = true;
      c.stdin?.end();
      c.done.then(
        async () => {
          if (name === undefined) {
            failure = await receiveError(new Error('the stream held no subvolume'));
            callback(failure);
            return;
          }
          received = { path: join(realDir, name), name };
          callback();
        },
        async (err: unknown) => {
          failure = await receiveError(err);
          callback(failure);
        },
      );
    },
    destroy(err, callback) {
      const c = child;
      if (!c) {
        callback(err);
        return;
      }
      // Kill first: closing stdin first would hand the receiver an EOF.
      c.kill('SIGTERM');
      c.done
        .catch(() => undefined)
        .then(() => {
          c.stdin?.destroy();
          callback(err);
        });
    },
  });

  const onAbort = () =>
    stream.destroy(new AbortedError('btrfs receive aborted', { cause: signal?.reason }));
  signal?.addEventListener('abort', onAbort, { once: true });

  const result = new Promise<ReceivedSubvolume>((resolve, reject) => {
    let error: unknown;
    stream.once('error', (err) => {
      error = err;
    });
    stream.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      if (received && stream.writableFinished) {
        resolve(received);
        return;
      }
      if (failure) {
        reject(failure);
        return;
      }
      const cause =
        error ?? new AbortedError('btrfs receive was destroyed before the stream finished');
      if (!child) {
        reject(cause);
        return;
      }
      receiveError(cause).then(reject, reject);
    });
  });
  result.catch(() => undefined);

  return {
    kind: 'sink',
    name: 'btrfs-receive',
    stream,
    result,
    get pid() {
      return child?.pid;
    },
  };
}
