/**
 * file-hash: an object-mode transform that adds the SHA-256 (node:crypto) of
 * each regular file to its entry and passes every other entry through at once.
 *
 * Buffering and backpressure: files are grouped into batches (up to 64 files or
 * 8 MiB by lstat size) and hashed by `concurrency` worker threads, each reading
 * synchronously into its own `chunkSize` buffer; file data in memory is bounded
 * by `concurrency × chunkSize` (default cores × 1 MiB). At most two batches wait
 * per worker; beyond that the transform stops taking entries. Entries are
 * emitted in completion order, not input order.
 */
import { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { PathLike } from 'node:fs';
import { AbortedError, UsageError } from '../errors.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/**
 * Source of the worker threads, kept as plain CommonJS text so it runs
 * unchanged from the TypeScript sources (tsx) and from the built package.
 *
 * Protocol: the parent posts `{ id, paths: Uint8Array[], sizes: number[] }`;
 * the worker hashes the files in order with synchronous reads into its one
 * `chunkSize` buffer, posts `{ progress: bytes }` every 32 MiB of a large file,
 * then `{ id, results }` with per file either `{ hex, bytes, unreported }` or
 * `{ code, message }` (an errno failure).
 */
const HASH_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const chunkSize = workerData.chunkSize;
const buf = Buffer.allocUnsafeSlow(chunkSize);
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const PROGRESS_STEP = 32 * 1024 * 1024;
function hashOne(path, size) {
  const fd = fs.openSync(path, flags);
  try {
    const hash = createHash('sha256');
    let total = 0;
    let unreported = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, chunkSize, null);
      if (n === 0) break;
      hash.update(n === chunkSize ? buf : buf.subarray(0, n));
      total += n;
      unreported += n;
      if (unreported >= PROGRESS_STEP) {
        parentPort.postMessage({ progress: unreported });
        unreported = 0;
      }
      if (n < chunkSize && total >= size) break;
    }
    return { hex: hash.digest('hex'), bytes: total, unreported };
  } finally {
    fs.closeSync(fd);
  }
}
parentPort.on('message', ({ id, paths, sizes }) => {
  const results = [];
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i];
    try {
      results.push(hashOne(Buffer.from(p.buffer, p.byteOffset, p.byteLength), sizes[i]));
    } catch (err) {
      if (err === null || typeof err !== 'object' || typeof err.code !== 'string') throw err;
      results.push({ code: err.code, message: err.message });
    }
  }
  parentPort.postMessage({ id, results });
});
`;

/** What the stage needs of an entry. */
export interface HashableEntry {
  /** Path to open; symlinks are not followed (a swapped-in link is an `ELOOP` failure). */
  absPath: PathLike;
  /** `lstat` of the entry: only regular files are hashed; `size` ends reading early. */
  stats: { isFile(): boolean; size: bigint | number };
}

/** Fields the stage sets on a regular file's entry (exactly one of them). */
export interface FileHashFields {
  /** Lower-case hex SHA-256 of the content. */
  sha256?: string;
  /** Why the file could not be read (vanished, unreadable, no longer a regular file). */
  hashError?: NodeJS.ErrnoException;
}

/** Options of {@link fileHash}. */
export interface FileHashOptions extends StageOptions {
  /** Worker threads hashing at once. Default: the number of CPUs, at most 8. */
  concurrency?: number;
  /** Bytes per read. Default 1 MiB; at least 4 KiB. */
  chunkSize?: number;
  /** Called with hashed byte counts as they accumulate (for progress). */
  onBytes?: (bytes: number) => void;
}

/** Totals of a finished stage. */
export interface FileHashResult {
  /** Regular files hashed. */
  files: number;
  /** Bytes hashed. */
  bytes: number;
  /** Regular files that could not be read (their entry carries `hashError`). */
  failed: number;
}

type Entry = HashableEntry & FileHashFields;

type WorkerResult =
  | { hex: string; bytes: number; unreported: number; code?: undefined }
  | { code: string; message: string };

type WorkerMessage = { progress: number } | { id: number; results: WorkerResult[] };

interface Batch {
  entries: Entry[];
  bytes: number;
}

interface PoolWorker {
  worker: Worker;
  /** Batches posted and not answered yet, by id. */
  pending: Map<number, Entry[]>;
}

const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;
const QUEUE_PER_WORKER = 2;

function pathBytes(path: PathLike): Buffer {
  if (Buffer.isBuffer(path)) return path;
  return Buffer.from(path instanceof URL ? decodeURIComponent(path.pathname) : path);
}

function errnoError(code: string, message: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(message);
  err.code = code;
  return err;
}

/**
 * Hashes regular files with bounded parallelism. Input: objects with
 * {@link HashableEntry}; output: the same objects, regular files with
 * {@link FileHashFields} set (the objects are mutated, not copied). A file that
 * cannot be read does not fail the stream: its entry carries `hashError`.
 * The workers are started lazily and terminated when the stream ends or is
 * destroyed. `result` resolves with the totals after the stream finished.
 */
export function fileHash(opts: FileHashOptions = {}): TransformStage<FileHashResult> {
  const concurrency = opts.concurrency ?? Math.min(availableParallelism(), 8);
  const chunkSize = opts.chunkSize ?? 1024 * 1024;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError('concurrency must be a positive integer');
  if (!Number.isInteger(chunkSize) || chunkSize < 4096)
    throw new UsageError('chunkSize must be an integer of at least 4096');
  const { onBytes, signal } = opts;
  const totals: FileHashResult = { files: 0, bytes: 0, failed: 0 };
  const pool: PoolWorker[] = [];
  let batch: Batch = { entries: [], bytes: 0 };
  let nextId = 0;
  let waiting: (() => void) | undefined;
  let flushing: (() => void) | undefined;
  let terminating = false;

  const outstanding = () => pool.reduce((n, w) => n + w.pending.size, 0);
  const hasRoom = () => outstanding() < concurrency * QUEUE_PER_WORKER;

  const onMessage = (member: PoolWorker, msg: WorkerMessage) => {
    if ('progress' in msg) {
      onBytes?.(msg.progress);
      return;
    }
    const entries = member.pending.get(msg.id);
    member.pending.delete(msg.id);
    if (!entries || stream.destroyed) return;
    msg.results.forEach((r, i) => {
      const entry = entries[i]!;
      if (r.code === undefined) {
        totals.files++;
        totals.bytes += r.bytes;
        if (r.unreported > 0) onBytes?.(r.unreported);
        entry.sha256 = r.hex;
      } else {
        totals.failed++;
        entry.hashError = errnoError(r.code, r.message);
      }
      stream.push(entry);
    });
    if (waiting && hasRoom()) {
      const resume = waiting;
      waiting = undefined;
      resume();
    }
    if (flushing && outstanding() === 0) flushing();
  };

  const spawn = (): PoolWorker => {
    const worker = new Worker(HASH_WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { chunkSize },
    });
    const member: PoolWorker = { worker, pending: new Map() };
    worker.on('message', (msg: WorkerMessage) => onMessage(member, msg));
    worker.on('error', (err) => stream.destroy(err));
    worker.on('exit', (code) => {
      if (!terminating && !stream.destroyed && (member.pending.size > 0 || code !== 0)) {
        stream.destroy(new Error(`file-hash worker exited with code ${code}`));
      }
    });
    pool.push(member);
    return member;
  };

  const dispatch = () => {
    if (batch.entries.length === 0) return;
    const idle = pool.find((w) => w.pending.size === 0);
    const member =
      idle ??
      (pool.length < concurrency
        ? spawn()
        : pool.reduce((a, b) => (b.pending.size < a.pending.size ? b : a)));
    const id = nextId++;
    member.pending.set(id, batch.entries);
    member.worker.postMessage({
      id,
      paths: batch.entries.map((e) => pathBytes(e.absPath)),
      sizes: batch.entries.map((e) => Number(e.stats.size)),
    });
    batch = { entries: [], bytes: 0 };
  };

  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_FILES,
    transform(entry: Entry, _enc, callback) {
      if (!entry.stats.isFile()) {
        callback(null, entry);
        return;
      }
      batch.entries.push(entry);
      batch.bytes += Number(entry.stats.size);
      // Dispatch early while a worker idles, so small trees and slow walks still run in parallel.
      const idle = pool.length < concurrency || pool.some((w) => w.pending.size === 0);
      if (batch.entries.length >= BATCH_FILES || batch.bytes >= BATCH_BYTES || idle) dispatch();
      if (hasRoom()) callback();
      else waiting = callback;
    },
    flush(callback) {
      dispatch();
      if (outstanding() === 0) callback();
      else flushing = callback;
    },
    destroy(err, callback) {
      terminating = true;
      Promise.all(pool.map((w) => w.worker.terminate())).then(
        () => callback(err),
        () => callback(err),
      );
    },
  });
  stream.once('end', () => {
    terminating = true;
    for (const w of pool) void w.worker.terminate();
  });
  if (signal) {
    const onAbort = () =>
      stream.destroy(new AbortedError('hashing aborted', { cause: signal.reason }));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  const result = finished(stream).then(() => totals);
  result.catch(() => undefined);
  return { kind: 'transform', name: 'file-hash', stream, result };
}
