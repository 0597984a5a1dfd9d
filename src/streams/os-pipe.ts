/**
 * Fusing: a source process joined straight to a sink process.
 *
 * A pipeline of stages moves every byte through this process: read from the
 * source's pipe, handed from stage to stage, written to the sink's pipe. When
 * every stage between a process-backed source and a process-backed sink has
 * nothing to do for a transfer (a rewrite whose map is the identity, a verify
 * whose sink verifies by itself, a guard for a trusted source), the caller
 * says so by calling {@link joinProcesses} instead of `runPipeline`: the sink
 * process gets the source process's stdout as its stdin, this process closes
 * its own copy of that pipe, and no byte of the stream passes through Node.
 * Deciding that the stages are no-ops is the caller's business (for btrfs →
 * btrfs, `stores/btrfs/fused-transfer.ts`); this module only joins and watches.
 *
 * Progress and byte count: the kernel counts what every process reads
 * (`rchar` in `/proc/<pid>/io`); the sink's count is sampled every `pollMs`
 * (every 10 ms once the source has exited, so the last sample is close to the
 * end) and reported through `onProgress` as a progress tap would. The final
 * count is what both processes read, as the kernel adds it to this process's
 * own count when it reaps them (see {@link reapedReadCount}), so a stream too
 * short for any sample is counted too: the stream, plus the few KiB they read
 * of other files, plus whatever the source itself read (`btrfs send` reads no
 * file data through read(): the kernel sends it), plus any other child of this
 * process reaped meanwhile.
 *
 * Completion and teardown: resolves once both processes exited successfully.
 * When either fails, or `signal` aborts, the other is killed; the call
 * settles only after both have been reaped, rejecting with the first failure
 * that is not a consequence of a kill of ours (or an AbortedError), and not a
 * source's broken pipe (see {@link JoinOptions.brokenPipe}) while the sink
 * failed by itself.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { AbortedError } from '../errors.js';
import { progressReport } from './progress-tap.js';
import type { Progress } from './progress-tap.js';

/** A running child process as {@link joinProcesses} needs it. */
export interface JoinedProcess {
  /** Its process id (undefined when the spawn failed: `done` then rejects). */
  readonly pid: number | undefined;
  /** Settles once it exited and was reaped: resolves on success, rejects with its error. */
  readonly done: Promise<void>;
  /** Asks it to stop; `done` settles once it has. */
  kill(): void;
}

/** Options of {@link joinProcesses}. */
export interface JoinOptions {
  /** Aborting kills both processes; the call then rejects with an AbortedError. */
  signal?: AbortSignal;
  /** Expected total bytes, for the progress reports' ETA. */
  total?: number;
  /** Progress, every `pollMs` while bytes flow and once with `done: true` at the end. */
  onProgress?: (progress: Progress) => void;
  /** Milliseconds between two samples of the sink's read count. Default 200. */
  pollMs?: number;
  /**
   * True for a source failure caused by the sink's end (killed by SIGPIPE):
   * never the root cause while the sink failed too. Default: none is.
   */
  brokenPipe?: (err: unknown) => boolean;
}

/** What a successful {@link joinProcesses} returns. */
export interface JoinResult {
  /** Bytes the sink process read (see the module header). */
  bytes: number;
  elapsedMs: number;
}

/** The `rchar:` figure of a `/proc/…/io` text. */
function rcharOf(text: string): number {
  const m = /^rchar:\s*(\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * What this process's reaped children (and exited threads) have read:
 * `/proc/self/io` counts those besides its live threads' own reads, which
 * `/proc/self/task/<tid>/io` give. Undefined where /proc cannot be read.
 */
export function reapedReadCount(): number | undefined {
  try {
    let threads = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        threads += rcharOf(readFileSync(`/proc/self/task/${tid}/io`, 'latin1'));
      } catch {
        // The thread exited: its reads moved into the process's total.
      }
    }
    return rcharOf(readFileSync('/proc/self/io', 'latin1')) - threads;
  } catch {
    return undefined;
  }
}

/** Bytes process `pid` has read so far (`rchar`), or undefined when it is gone. */
export async function readCount(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const text = await readFile(`/proc/${pid}/io`, 'latin1').catch(() => undefined);
  const m = text === undefined ? null : /^rchar:\s*(\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Starts the source (its stdout not yet read by anyone), then in the same tick
 * the sink with that stdout as its stdin, closes this process's copy, and waits
 * for both (see the module header). `startSink` may throw: the source is then
 * killed and reaped and the error rethrown.
 */
export async function joinProcesses(
  startSource: () => JoinedProcess & { readonly stdout: Readable | undefined },
  startSink: (stdin: Readable) => JoinedProcess,
  opts: JoinOptions = {},
): Promise<JoinResult> {
  opts.signal?.throwIfAborted();
  const reapedBefore = reapedReadCount();
  const source = startSource();
  let sink: JoinedProcess;
  try {
    if (!source.stdout) throw new Error('joinProcesses: the source process has no stdout');
    sink = startSink(source.stdout);
  } catch (err) {
    source.kill();
    await source.done.catch(() => undefined);
    throw err;
  } finally {
    // Only the two children hold the pipe now: its EOF comes when the source exits.
    source.stdout?.destroy();
  }
  return watchJoined(source, sink, opts, reapedBefore);
}

/** Waits for both processes, killing the other when one fails; samples progress meanwhile. */
async function watchJoined(
  source: JoinedProcess,
  sink: JoinedProcess,
  opts: JoinOptions,
  reapedBefore: number | undefined,
): Promise<JoinResult> {
  const started = performance.now();
  const failures: unknown[] = [];
  let brokenPipe: unknown;
  const killed = new Set<JoinedProcess>();
  const stop = (p: JoinedProcess) => {
    if (killed.has(p)) return;
    killed.add(p);
    p.kill();
  };
  const onAbort = () => {
    failures.push(new AbortedError('aborted', { cause: opts.signal?.reason }));
    stop(source);
    stop(sink);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const sampler = sampleCount(sink.pid, opts, started, (err) => {
    failures.push(err);
    stop(source);
    stop(sink);
  });
  const watch = (p: JoinedProcess, other: JoinedProcess) =>
    p.done.catch((err: unknown) => {
      if (killed.has(p)) return;
      // Killed by SIGPIPE: the sink has gone already, and its own failure says why.
      if (p === source && opts.brokenPipe?.(err)) {
        brokenPipe = err;
        return;
      }
      failures.push(err);
      stop(other);
    });
  await Promise.all([watch(source, sink).then(() => sampler.hurry()), watch(sink, source)]).finally(
    () => {
      opts.signal?.removeEventListener('abort', onAbort);
      sampler.stop();
    },
  );
  if (failures.length > 0) throw failures[0];
  if (brokenPipe !== undefined) throw brokenPipe;
  const elapsedMs = performance.now() - started;
  // Both reaped: what they read, the last bytes included, is in this process's count now.
  const reapedAfter = reapedReadCount();
  const reaped =
    reapedBefore !== undefined && reapedAfter !== undefined ? reapedAfter - reapedBefore : 0;
  const bytes = Math.max(sampler.bytes(), reaped);
  opts.onProgress?.(progressReport(bytes, elapsedMs, opts.total, true));
  return { bytes, elapsedMs };
}

/** What {@link sampleCount} returns. */
interface Sampler {
  /** The latest sample. */
  bytes(): number;
  /** Samples every 10 ms from now on (the source has exited). */
  hurry(): void;
  stop(): void;
}

/**
 * Samples `pid`'s read count every `opts.pollMs` (10 ms after `hurry`) until
 * `stop`, reporting progress at most every `opts.pollMs`. A throwing
 * `onProgress` goes to `onError` and ends the sampling.
 */
function sampleCount(
  pid: number | undefined,
  opts: JoinOptions,
  started: number,
  onError: (err: unknown) => void,
): Sampler {
  const pollMs = opts.pollMs ?? 200;
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let reading = false;
  let stopped = false;
  let every = pollMs;
  let reported = started;
  const sample = (n: number | undefined) => {
    reading = false;
    if (stopped) return;
    const now = performance.now();
    if (n !== undefined && n > bytes) bytes = n;
    if (now - reported >= pollMs && bytes > 0) {
      reported = now;
      opts.onProgress?.(progressReport(bytes, now - started, opts.total, false));
    }
    timer = setTimeout(tick, every);
  };
  const tick = () => {
    timer = undefined;
    reading = true;
    readCount(pid)
      .then(sample)
      .catch((err: unknown) => {
        stopped = true;
        onError(err);
      });
  };
  timer = setTimeout(tick, every);
  return {
    bytes: () => bytes,
    hurry: () => {
      every = Math.min(every, 10);
      // Sample now rather than at the end of the pause already begun.
      if (!reading && !stopped) {
        clearTimeout(timer);
        tick();
      }
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
