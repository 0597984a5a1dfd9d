/**
 * Transform stages that compress (`zstd -c -LEVEL -T0`) or decompress (`zstd -d -c`)
 * through the Debian `zstd` program as a child process (Node 20's zlib has no zstd,
 * and no binding can be installed here). Its frames are the standard format, so
 * `zstd -d` restores what {@link zstdCompress} wrote, and the other way round.
 *
 * Buffering and backpressure: each chunk written goes to the child's stdin; the
 * stage's write callback waits for that pipe to drain, so at most one chunk plus
 * the pipe's buffer (64 KiB) is held on the way in. Each read of the child's stdout
 * (≤ 64 KiB) is pushed uncopied; when the readable side holds its highWaterMark
 * (1 MiB) the child's stdout is paused, the pipe fills and the kernel blocks `zstd`.
 * The child itself holds a bounded window (a few MiB at the levels allowed).
 *
 * Completion: the readable side ends only after `zstd` exited 0 and its stdout was
 * read to its end, so a corrupt or truncated frame (zstd exits 1) errors the stream
 * before its end. Destroying the stream (or aborting `signal`) kills the child and
 * reports `close` only after it was reaped (see `spawnProgram` in btrfs/exec.ts).
 */
import { Duplex } from 'node:stream';
import { UsageError } from '../errors.js';
import { spawnProgram } from '../btrfs/exec.js';
import type { BtrfsChild } from '../btrfs/exec.js';
import { destroyOnAbort, transformStage } from '../streams/stage.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** The program run; replaceable for tests of a missing binary. */
export const ZSTD_ARGV: readonly string[] = ['zstd'];

/** Highest level accepted (`zstd --ultra` is not used: its windows need far more memory). */
export const ZSTD_MAX_LEVEL = 19;

/** Default level of `--compress zstd` (zstd's own default). */
export const ZSTD_DEFAULT_LEVEL = 3;

/** Options of {@link zstdCompress}. */
export interface ZstdCompressOptions extends StageOptions {
  /** Compression level, 1–19. Default 3. */
  level?: number;
}

/** Bytes buffered on the readable side before the child's stdout is paused. */
const READ_AHEAD = 1024 * 1024;

/** Compresses the bytes written into one zstd frame. Throws UsageError on a bad level. */
export function zstdCompress(opts: ZstdCompressOptions = {}): TransformStage<void> {
  const level = opts.level ?? ZSTD_DEFAULT_LEVEL;
  if (!Number.isSafeInteger(level) || level < 1 || level > ZSTD_MAX_LEVEL) {
    throw new UsageError(`zstd level must be a whole number from 1 to ${ZSTD_MAX_LEVEL}`);
  }
  return childTransform('zstd-compress', ['-q', '-c', `-${level}`, '-T0'], opts);
}

/** Decompresses zstd frames; a corrupt or truncated input errors the stream. */
export function zstdDecompress(opts: StageOptions = {}): TransformStage<void> {
  return childTransform('zstd-decompress', ['-q', '-d', '-c'], opts);
}

/** A transform stage whose bytes go through `zstd ...args` (stdin to stdout). */
function childTransform(
  name: string,
  args: readonly string[],
  opts: StageOptions,
): TransformStage<void> {
  let child: BtrfsChild | undefined;
  const spawn = (): BtrfsChild => {
    if (child) return child;
    const c = spawnProgram(ZSTD_ARGV, args, { stdin: 'pipe', stdout: 'pipe' });
    child = c;
    const out = c.stdout!;
    out.on('data', (chunk: Buffer) => {
      if (!stream.push(chunk)) out.pause();
    });
    const drained = new Promise<void>((resolve) => {
      out.once('end', resolve);
      out.once('close', resolve);
      out.once('error', () => resolve());
    });
    // A child that fails reports its own error (its exit status and stderr), never EPIPE.
    c.stdin!.on('error', () => undefined);
    Promise.all([c.done, drained]).then(
      () => {
        if (!stream.destroyed) stream.push(null);
      },
      (err: unknown) => stream.destroy(err as Error),
    );
    return c;
  };
  const stream = new Duplex({
    readableHighWaterMark: READ_AHEAD,
    write(chunk: Buffer, _enc, callback) {
      const c = spawn();
      if (c.stdin!.write(chunk)) callback();
      else c.stdin!.once('drain', () => callback());
    },
    final(callback) {
      spawn().stdin!.end(() => callback());
    },
    read() {
      spawn().stdout?.resume();
    },
    destroy(err, callback) {
      const c = child;
      if (!c) {
        callback(err);
        return;
      }
      c.kill('SIGTERM');
      c.stdin?.destroy();
      c.stdout?.destroy();
      c.done.then(
        () => callback(err),
        () => callback(err),
      );
    },
  });
  destroyOnAbort(stream, opts.signal);
  return transformStage(name, stream);
}
