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
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { PathLike } from 'node:fs';
import { UsageError } from '../errors.js';
import { destroyOnAbort, streamDone, transformStage } from '../streams/stage.js';
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
  const pool = new HashPool(concurrency, chunkSize, opts.onBytes);
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_FILES,
    transform(entry: Entry, _enc, callback) {
      if (!entry.stats.isFile()) {
        callback(null, entry);
        return;
      }
      pool.add(entry);
      if (pool.hasRoom()) callback();
      else pool.waiting = callback;
    },
    flush(callback) {
      pool.dispatch();
      if (pool.outstanding() === 0) callback();
      else pool.flushing = callback;
    },
    destroy(err, callback) {
      pool.terminate().then(
        () => callback(err),
        () => callback(err),
      );
    },
  });
  pool.stream = stream;
  stream.once('end', () => void pool.terminate());
  destroyOnAbort(stream, opts.signal, 'hashing aborted');
  return transformStage(
    'file-hash',
    stream,
    streamDone(stream).then(() => pool.totals),
  );
}

/**
 * The worker threads and the batches they hash: entries are batched, posted to an
 * idle (or new, or least busy) worker, and pushed to `stream` as results come back.
 */
class HashPool {
  readonly totals: FileHashResult = { files: 0, bytes: 0, failed: 0 };
  /** Set right after construction: the stream results are pushed to (and destroyed on failure). */
  stream!: Transform;
  /** The transform's callback, held while the workers have no room. */
  waiting: (() => void) | undefined;
  /** The flush callback, held until every batch is answered. */
  flushing: (() => void) | undefined;
  private readonly pool: PoolWorker[] = [];
  private batch: Batch = { entries: [], bytes: 0 };
  private nextId = 0;
  private terminating = false;

  constructor(
    private readonly concurrency: number,
    private readonly chunkSize: number,
    private readonly onBytes: ((bytes: number) => void) | undefined,
  ) {}

  /** Batches posted and not answered yet. */
  outstanding(): number {
    return this.pool.reduce((n, w) => n + w.pending.size, 0);
  }

  /** True while fewer than QUEUE_PER_WORKER batches wait per worker. */
  hasRoom(): boolean {
    return this.outstanding() < this.concurrency * QUEUE_PER_WORKER;
  }

  /** Adds a regular file to the batch; posts the batch when full or a worker idles. */
  add(entry: Entry): void {
    this.batch.entries.push(entry);
    this.batch.bytes += Number(entry.stats.size);
    // Dispatch early while a worker idles, so small trees and slow walks still run in parallel.
    const idle = this.pool.length < this.concurrency || this.pool.some((w) => w.pending.size === 0);
    const { entries, bytes } = this.batch;
    if (entries.length >= BATCH_FILES || bytes >= BATCH_BYTES || idle) this.dispatch();
  }

  /** Posts the batch (if any) to an idle worker, a new one, or the least busy one. */
  dispatch(): void {
    const { batch, pool } = this;
    if (batch.entries.length === 0) return;
    const idle = pool.find((w) => w.pending.size === 0);
    const member =
      idle ??
      (pool.length < this.concurrency
        ? this.spawn()
        : pool.reduce((a, b) => (b.pending.size < a.pending.size ? b : a)));
    const id = this.nextId++;
    member.pending.set(id, batch.entries);
    member.worker.postMessage({
      id,
      paths: batch.entries.map((e) => pathBytes(e.absPath)),
      sizes: batch.entries.map((e) => Number(e.stats.size)),
    });
    this.batch = { entries: [], bytes: 0 };
  }

  /** Stops every worker (the stream ended or was destroyed). */
  terminate(): Promise<unknown> {
    this.terminating = true;
    return Promise.all(this.pool.map((w) => w.worker.terminate()));
  }

  private spawn(): PoolWorker {
    const worker = new Worker(HASH_WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { chunkSize: this.chunkSize },
    });
    const member: PoolWorker = { worker, pending: new Map() };
    const { stream } = this;
    worker.on('message', (msg: WorkerMessage) => this.onMessage(member, msg));
    worker.on('error', (err) => stream.destroy(err));
    worker.on('exit', (code) => {
      if (!this.terminating && !stream.destroyed && (member.pending.size > 0 || code !== 0)) {
        stream.destroy(new Error(`file-hash worker exited with code ${code}`));
      }
    });
    this.pool.push(member);
    return member;
  }

  private onMessage(member: PoolWorker, msg: WorkerMessage): void {
    if ('progress' in msg) {
      this.onBytes?.(msg.progress);
      return;
    }
    const entries = member.pending.get(msg.id);
    member.pending.delete(msg.id);
    if (!entries || this.stream.destroyed) return;
    msg.results.forEach((r, i) => this.record(entries[i]!, r));
    if (this.waiting && this.hasRoom()) {
      const resume = this.waiting;
      this.waiting = undefined;
      resume();
    }
    if (this.flushing && this.outstanding() === 0) this.flushing();
  }

  /** Sets a file's hash or error, counts it, and pushes its entry. */
  private record(entry: Entry, r: WorkerResult): void {
    if (r.code === undefined) {
      this.totals.files++;
      this.totals.bytes += r.bytes;
      if (r.unreported > 0) this.onBytes?.(r.unreported);
      entry.sha256 = r.hex;
    } else {
      this.totals.failed++;
      entry.hashError = errnoError(r.code, r.message);
    }
    this.stream.push(entry);
  }
}
