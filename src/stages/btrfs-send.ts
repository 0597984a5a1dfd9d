/**
 * Source stage: the bytes of `btrfs send` for one read-only subvolume.
 *
 * Buffering and backpressure: the child's stdout arrives in socket-sized reads
 * (≤ 64 KiB), each a buffer of its own, and they are pushed as they are: no
 * copy. (Gathering them into 1 MiB chunks, as an earlier version did, cost more
 * than it saved: measured on a 640 MiB transfer, the process's CPU went from
 * 1.34 s to 1.85 s, Buffer.concat copying every byte once more and the garbage
 * collector chasing the extra buffers; the per-chunk cost of the stages after
 * it did not drop measurably.) `chunkSize` still gathers, for a consumer that
 * wants large chunks. When the stage's readable buffer reaches its
 * highWaterMark (1 MiB, or one chunk) the child's stdout is paused, the socket
 * fills and the kernel blocks `btrfs send`.
 *
 * Completion: the stream ends only after `btrfs send` exited 0 and its stdout
 * was drained; a non-zero exit errors the stream with a CommandError carrying
 * stderr. Destroying the stream (or aborting `signal`) sends SIGTERM to the
 * child (relayed by `sudo`, SIGKILL after 5 s) and waits until it has been
 * reaped before the stream emits `close`.
 *
 * Where no stage needs to look at the bytes, {@link spawnBtrfsSend} starts the
 * same command with its stdout handed on unread (see `streams/os-pipe.ts`).
 */
import { Readable } from 'node:stream';
import { AbortedError, UsageError } from '../errors.js';
import { btrfsCommandLine, spawnBtrfs } from '../btrfs/exec.js';
import type { BtrfsChild } from '../btrfs/exec.js';
import type { SourceStage, StageOptions } from '../streams/stage.js';
import { killAndReap } from './btrfs-child.js';

/** Options of {@link btrfsSend}. */
export interface BtrfsSendOptions extends StageOptions {
  /** Path of the read-only subvolume to send. */
  path: string;
  /** Read-only subvolume the receiver already has: makes an incremental stream (`-p`). */
  parent?: string;
  /** Extra read-only subvolumes whose extents may be cloned (`-c`, repeatable). */
  clones?: readonly string[];
  /** Metadata only (`--no-data`): UPDATE_EXTENT commands instead of data, for size probes. Default false. */
  noData?: boolean;
  /** Send stream version (`--proto`): 1 (default of btrfs-progs 6.2) or 2 (needs kernel ≥ 6.0). */
  proto?: 1 | 2;
  /** Send compressed extents as they are (`--compressed-data`, implies proto 2). Default false. */
  compressedData?: boolean;
  /**
   * Gather the child's reads into chunks of at least this many bytes (copying
   * them) before pushing; the last chunk may be shorter. Default: none, each
   * read (≤ 64 KiB) is pushed as it is, uncopied.
   */
  chunkSize?: number;
}

/** What {@link btrfsSend} produces once its stream ended. */
export interface BtrfsSendResult {
  /** Bytes of send stream produced. */
  bytes: number;
}

/** The stage {@link btrfsSend} returns. */
export interface BtrfsSendStage extends SourceStage<BtrfsSendResult> {
  /** Process id of `btrfs send` once started (on first read), else undefined. */
  readonly pid: number | undefined;
  /** The command line, for messages. */
  readonly command: string;
}

/** Bytes buffered in the readable side before the child's stdout is paused, without `chunkSize`. */
const READ_AHEAD = 1024 * 1024;

/** The `btrfs` arguments {@link btrfsSend} runs for `opts`. */
export function btrfsSendArgs(opts: BtrfsSendOptions): string[] {
  return [
    'send',
    '-q',
    ...(opts.parent !== undefined ? ['-p', opts.parent] : []),
    ...(opts.clones ?? []).flatMap((c) => ['-c', c]),
    ...(opts.noData ? ['--no-data'] : []),
    ...(opts.proto !== undefined ? ['--proto', String(opts.proto)] : []),
    ...(opts.compressedData ? ['--compressed-data'] : []),
    opts.path,
  ];
}

/** Throws UsageError when `opts` are invalid for {@link btrfsSend}. */
function checkSendOptions(opts: BtrfsSendOptions): void {
  if (typeof opts.path !== 'string' || opts.path === '') {
    throw new UsageError('btrfsSend: path must be a non-empty string');
  }
  if (opts.parent !== undefined && (typeof opts.parent !== 'string' || opts.parent === '')) {
    throw new UsageError('btrfsSend: parent must be a non-empty string');
  }
  if (opts.clones?.some((c) => typeof c !== 'string' || c === '')) {
    throw new UsageError('btrfsSend: clones must be non-empty strings');
  }
  if (opts.proto !== undefined && opts.proto !== 1 && opts.proto !== 2) {
    throw new UsageError(`btrfsSend: proto must be 1 or 2, not ${String(opts.proto)}`);
  }
  if (opts.compressedData && opts.proto === 1) {
    throw new UsageError('btrfsSend: compressedData needs proto 2');
  }
  const chunkSize = opts.chunkSize;
  if (chunkSize !== undefined && (!Number.isSafeInteger(chunkSize) || chunkSize < 1)) {
    throw new UsageError('btrfsSend: chunkSize must be a positive integer');
  }
}

/**
 * Starts `btrfs send` as {@link btrfsSend} would, its stdout a pipe nobody has
 * read yet: for a caller that hands that pipe to another process in the same
 * tick (`streams/os-pipe.ts`). The caller stops and reaps the child.
 * Throws UsageError on invalid options.
 */
export function spawnBtrfsSend(opts: Omit<BtrfsSendOptions, 'chunkSize' | 'signal'>): BtrfsChild {
  checkSendOptions(opts);
  return spawnBtrfs(btrfsSendArgs(opts), { stdout: 'pipe' });
}

/**
 * Moves the child's stdout into `stream` (pausing it on backpressure, gathering
 * to `chunkSize` when given) and ends `stream` once the child exited 0 and its
 * stdout was drained, or destroys it with the child's error.
 */
function pump(
  c: BtrfsChild,
  stream: Readable,
  chunkSize: number | undefined,
  count: (n: number) => void,
): void {
  const out = c.stdout;
  if (!out) throw new Error('btrfs send spawned without stdout');
  let held: Buffer[] = [];
  let heldBytes = 0;
  const flush = (): boolean => {
    if (heldBytes === 0) return true;
    const chunk = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    return stream.push(chunk);
  };
  out.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (chunkSize === undefined) {
      if (!stream.push(chunk)) out.pause();
      return;
    }
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= chunkSize && !flush()) out.pause();
  });
  const drained = new Promise<void>((resolve, reject) => {
    out.once('end', resolve);
    out.once('error', reject);
    out.once('close', resolve);
  });
  Promise.all([c.done, drained]).then(
    () => {
      if (stream.destroyed) return;
      flush();
      stream.push(null);
    },
    (err: unknown) => stream.destroy(err as Error),
  );
}

/** Resolves with the byte count once `stream` ended; rejects when it errored or closed first. */
function sendResult(
  stream: Readable,
  bytes: () => number,
  onClose: () => void,
): Promise<BtrfsSendResult> {
  const result = new Promise<BtrfsSendResult>((resolve, reject) => {
    let ended = false;
    stream.once('end', () => {
      ended = true;
    });
    stream.once('error', reject);
    stream.once('close', () => {
      onClose();
      if (ended) resolve({ bytes: bytes() });
      else reject(new AbortedError('btrfs send was destroyed before its end'));
    });
  });
  result.catch(() => undefined);
  return result;
}

/**
 * Streams `btrfs send` of `opts.path`. The child starts on the first read, so
 * an unconsumed stage spawns nothing. Requires root.
 * Throws UsageError on invalid options.
 */
export function btrfsSend(opts: BtrfsSendOptions): BtrfsSendStage {
  checkSendOptions(opts);
  const args = btrfsSendArgs(opts);
  const signal = opts.signal;
  let child: BtrfsChild | undefined;
  let bytes = 0;
  const aborted = () => new AbortedError('btrfs send aborted', { cause: signal?.reason });

  const stream = new Readable({
    highWaterMark: opts.chunkSize ?? READ_AHEAD,
    read() {
      if (child) {
        child.stdout?.resume();
      } else if (signal?.aborted) {
        stream.destroy(aborted());
      } else {
        child = spawnBtrfs(args, { stdout: 'pipe' });
        pump(child, stream, opts.chunkSize, (n) => (bytes += n));
      }
    },
    destroy(err, callback) {
      // Kill before closing stdout, and report `close` only once the child is reaped.
      if (!child) callback(err);
      else void killAndReap(child, child.stdout, true).then(() => callback(err));
    },
  });

  const onAbort = () => stream.destroy(aborted());
  signal?.addEventListener('abort', onAbort, { once: true });
  const result = sendResult(
    stream,
    () => bytes,
    () => signal?.removeEventListener('abort', onAbort),
  );
  if (signal?.aborted) onAbort();

  return {
    kind: 'source',
    name: 'btrfs-send',
    stream,
    result,
    command: btrfsCommandLine(args),
    get pid() {
      return child?.pid;
    },
  };
}
