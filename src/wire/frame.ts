/**
 * Framing of the `buttersink --server` protocol: every unit on the wire, in
 * both directions, is a frame `type:u8 | length:u32be | payload[length]`.
 * Type 1 carries one JSON control message (UTF-8), type 2 raw stream bytes.
 *
 * Buffering/backpressure: {@link FrameReader} is pull-based: it reads from its
 * stream only while a caller waits in `next()`, and holds at most one frame
 * plus the last chunk read; while nobody calls `next()` the underlying stream
 * (an ssh2 channel, stdin) fills up and its producer is held back (for ssh2:
 * no window adjust, so the remote stops sending). {@link FrameWriter} awaits
 * `drain` whenever the stream's buffer is full, so a writer never holds more
 * than the stream's highWaterMark plus one frame.
 *
 * Time limits: with `idleMs`, a reader waiting for bytes that do not come, or
 * a writer waiting for a `drain` while the peer reads nothing, fails with a
 * {@link TimeoutError} instead of waiting for ever.
 *
 * Frame sizes: a chunk becomes as few data frames of at most 1 MiB as it can,
 * of equal size (a 1.06 MiB chunk: two of 0.53 MiB, not 1 MiB and a sliver),
 * and each header goes out in one write with the first {@link HEAD_COALESCE}
 * payload bytes: an ssh2 channel turns every write into ≤ 32 KiB packets, so a
 * header written alone costs a packet (an encryption, a syscall) of its own,
 * and small frames cost per frame on both ends.
 */
import type { Readable, Writable } from 'node:stream';
import { AbortedError, ButtersinkError } from '../errors.js';
import { formatSeconds as seconds } from '../format.js';

/** Frame type of a JSON control message. */
export const FRAME_JSON = 1;
/** Frame type of a chunk of stream data. */
export const FRAME_DATA = 2;
/** Bytes of a frame header. */
export const FRAME_HEADER_SIZE = 5;
/** Largest data payload a writer puts in one frame. */
export const DATA_FRAME_SIZE = 1024 * 1024;
/**
 * Payload bytes written together with a frame's header (one copy of at most
 * this much): an SSH packet's worth (OpenSSH's 32 KiB maximum packet) less the header.
 */
const HEAD_COALESCE = 32 * 1024 - FRAME_HEADER_SIZE;
/** Default largest data payload a reader accepts. */
export const MAX_DATA_FRAME = 1024 * 1024;

/** The peer broke the protocol: bad framing, oversize frame, invalid JSON, unexpected message. */
export class ProtocolError extends ButtersinkError {
  override readonly code = 'PROTOCOL';
}

/** A time limit ran out: the peer sent or read nothing for too long, or a session ran too long. */
export class TimeoutError extends ButtersinkError {
  override readonly code = 'TIMEOUT';
}

/** Longest delay `setTimeout` honours (a larger one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One frame as read. A data frame's payload is the pieces of the chunks it
 * arrived in (views, not copies: a 1 MiB frame read from 64 KiB chunks is not
 * copied into a buffer of its own); `length` is their total.
 */
export type Frame =
  { kind: 'json'; message: unknown } | { kind: 'data'; parts: readonly Buffer[]; length: number };

/** Limits of a {@link FrameReader}; every frame larger than its limit is a ProtocolError. */
export interface FrameReaderOptions {
  /** Largest JSON payload accepted, bytes. */
  maxJson: number;
  /** Largest data payload accepted, bytes. Default {@link MAX_DATA_FRAME}. */
  maxData?: number;
  /** Names the peer in errors, e.g. `remote` or `client`. */
  peer: string;
  /**
   * Idle limit, ms: a `next()` that waited this long without a byte arriving
   * rejects with a {@link TimeoutError} (`no data from the <peer> for N s (idle
   * limit)…`), and so does every later call. 0 or absent: no limit.
   */
  idleMs?: number;
  /** Called once with the error when the idle limit ran out (before `next()` rejects). */
  onIdle?: (err: TimeoutError) => void;
  /**
   * Aborting it makes a pending and every later `next()` reject with its
   * reason (an AbortedError when the reason is not an Error).
   */
  signal?: AbortSignal;
}

/** Printable preview of bytes that were not a frame, for "wrong remote command" errors. */
function preview(bytes: Buffer): string {
  return JSON.stringify(bytes.subarray(0, 60).toString('latin1'));
}

/**
 * Reads frames from a byte stream. Contract: `next()` resolves with the next
 * frame, or null when the stream ended exactly at a frame boundary; it rejects
 * with a ProtocolError on a truncated or malformed frame, or with the stream's
 * error; with a TimeoutError once it waited `idleMs` without a byte, or with the
 * signal's reason once aborted (both final). Calls must not overlap.
 */
export class FrameReader {
  readonly #stream: Readable;
  readonly #maxJson: number;
  readonly #maxData: number;
  readonly #peer: string;
  readonly #chunks: Buffer[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #frames = 0;
  #discarding = false;
  readonly #idleMs: number;
  readonly #onIdle: ((err: TimeoutError) => void) | undefined;
  /** When the current wait for data started or data last arrived (performance.now()). */
  #since = 0;
  /** Set by the idle limit or the signal: every `next()` rejects with it. */
  #failure: Error | undefined;

  constructor(stream: Readable, opts: FrameReaderOptions) {
    this.#stream = stream;
    this.#maxJson = opts.maxJson;
    this.#maxData = opts.maxData ?? MAX_DATA_FRAME;
    this.#peer = opts.peer;
    this.#idleMs = Math.min(Math.max(opts.idleMs ?? 0, 0), MAX_TIMER_MS);
    this.#onIdle = opts.onIdle;
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => {
        const r: unknown = signal.reason;
        this.#fail(r instanceof Error ? r : new AbortedError('aborted', { cause: r }));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    const wake = () => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    stream.on('readable', wake);
    stream.on('end', () => {
      this.#ended = true;
      wake();
    });
    stream.on('close', () => {
      this.#ended = true;
      wake();
    });
    stream.on('error', (err) => {
      this.#error = err;
      wake();
    });
  }

  /**
   * Drops everything buffered and everything still to come, reading the stream
   * to its end (an ssh2 channel emits `close` only after its readable side
   * ended). A pending or later `next()` resolves with null. Idempotent.
   */
  discard(): void {
    if (this.#discarding) return;
    this.#discarding = true;
    this.#chunks.length = 0;
    this.#buffered = 0;
    const drain = () => {
      while (this.#stream.read() !== null);
    };
    this.#stream.on('readable', drain);
    drain();
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Frames read so far. */
  get frames(): number {
    return this.#frames;
  }

  /** Makes every `next()`, the pending one included, reject with `err` (the first one set stays). */
  #fail(err: Error): void {
    this.#failure ??= err;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#buffered < n) {
      if (this.#failure) throw this.#failure;
      if (this.#discarding) return false;
      const chunk = this.#stream.read() as Buffer | null;
      if (chunk !== null) {
        this.#chunks.push(chunk);
        this.#buffered += chunk.length;
        this.#since = performance.now();
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#ended || this.#stream.destroyed) return false;
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
        if (this.#idleMs > 0) {
          const left = Math.max(0, this.#since + this.#idleMs - performance.now());
          timer = setTimeout(() => {
            const err = new TimeoutError(
              `no data from the ${this.#peer} for ${seconds(this.#idleMs)} (idle limit); closing the session`,
            );
            this.#onIdle?.(err);
            this.#fail(err);
          }, left);
        }
      });
    }
    return true;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }

  /** The next `n` buffered bytes as views of the chunks they arrived in (no copy). */
  #takeParts(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      if (c.length <= left) {
        out.push(c);
        this.#chunks.shift();
        left -= c.length;
      } else {
        out.push(c.subarray(0, left));
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#buffered -= n;
    return out;
  }

  /** The next frame; null at a clean end of stream. */
  async next(): Promise<Frame | null> {
    if (this.#failure) throw this.#failure;
    this.#since = performance.now();
    if (!(await this.#fill(FRAME_HEADER_SIZE))) {
      if (this.#buffered === 0 || this.#discarding) return null;
      throw new ProtocolError(`${this.#peer} closed the connection in the middle of a frame`);
    }
    const header = this.#take(FRAME_HEADER_SIZE);
    const type = header[0];
    const length = header.readUInt32BE(1);
    const limit = type === FRAME_JSON ? this.#maxJson : type === FRAME_DATA ? this.#maxData : -1;
    if (limit < 0 || length > limit) {
      const what =
        limit < 0
          ? `unknown frame type ${type ?? '?'}`
          : `frame of ${length} bytes (limit ${limit})`;
      const head =
        this.#frames === 0
          ? ` (received ${preview(Buffer.concat([header, ...this.#chunks]))}…)`
          : '';
      throw new ProtocolError(`${this.#peer} sent ${what}${head}`);
    }
    if (!(await this.#fill(length))) {
      if (this.#discarding) return null;
      throw new ProtocolError(`${this.#peer} closed the connection in the middle of a frame`);
    }
    this.#frames += 1;
    if (type === FRAME_DATA) return { kind: 'data', parts: this.#takeParts(length), length };
    const payload = this.#take(length);
    let message: unknown;
    try {
      message = JSON.parse(payload.toString('utf8'));
    } catch {
      throw new ProtocolError(`${this.#peer} sent a control message that is not JSON`);
    }
    return { kind: 'json', message };
  }
}

/** Options of a {@link FrameWriter}. */
export interface FrameWriterOptions {
  /** Names the peer in errors, e.g. `remote` or `client`. */
  peer: string;
  /**
   * Idle limit, ms: a frame that waited this long for `drain` while the
   * stream's buffer did not shrink (the peer read nothing) rejects with a
   * {@link TimeoutError} (`the <peer> read nothing for N s (idle limit)…`).
   * 0 or absent: no limit.
   */
  idleMs?: number;
  /** Called with the error when the idle limit ran out (after the frame rejected). */
  onIdle?: (err: TimeoutError) => void;
}

/**
 * Writes frames to a byte stream. Contract: each `json`/`data` call resolves
 * once its bytes were accepted by the stream without exceeding its
 * highWaterMark (after `drain` when needed), and rejects when the stream
 * errored or closed first, when the peer read nothing for `idleMs`, or once
 * {@link FrameWriter.last} was called. A frame's header and payload are
 * written in one tick, so frames from concurrent callers never interleave.
 */
export class FrameWriter {
  readonly #stream: Writable;
  readonly #peer: string;
  readonly #idleMs: number;
  readonly #onIdle: ((err: TimeoutError) => void) | undefined;
  /** Rejecters of the frames waiting for `drain`. */
  readonly #waiting = new Set<(err: Error) => void>();
  /** Set by {@link FrameWriter.last}: every later frame rejects with it. */
  #sealed: Error | undefined;

  #closed = false;

  constructor(stream: Writable, opts: FrameWriterOptions) {
    this.#stream = stream;
    this.#peer = opts.peer;
    this.#idleMs = Math.min(Math.max(opts.idleMs ?? 0, 0), MAX_TIMER_MS);
    this.#onIdle = opts.onIdle;
    // An ssh2 channel whose connection died neither errors nor drains: its `close` is the only sign.
    stream.once('close', () => (this.#closed = true));
  }

  /**
   * Writes `message` as the last frame without waiting for `drain` (it goes
   * out once the peer reads what is queued before it), then refuses every
   * frame: the pending ones and later ones reject. For the one error that
   * ends a session whose operations are still unwinding. Idempotent: only
   * the first message is written.
   */
  last(message: object): void {
    if (this.#sealed) return;
    this.#sealed = new ProtocolError(`connection to ${this.#peer} is closing`);
    const s = this.#stream;
    if (!this.#closed && !s.destroyed && !s.writableEnded) {
      const payload = Buffer.from(JSON.stringify(message), 'utf8');
      const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
      header[0] = FRAME_JSON;
      header.writeUInt32BE(payload.length, 1);
      s.write(Buffer.concat([header, payload]));
    }
    for (const reject of [...this.#waiting]) reject(this.#sealed);
  }

  /** Sends one JSON control message. */
  json(message: object): Promise<void> {
    const payload = Buffer.from(JSON.stringify(message), 'utf8');
    return this.#frame(FRAME_JSON, payload);
  }

  /** Sends `data` as the fewest data frames of at most {@link DATA_FRAME_SIZE} bytes, of equal size. */
  async data(data: Buffer): Promise<void> {
    const size = Math.ceil(data.length / Math.ceil(data.length / DATA_FRAME_SIZE));
    for (let at = 0; at < data.length; at += size) {
      await this.#frame(FRAME_DATA, data.subarray(at, at + size));
    }
  }

  #frame(type: number, payload: Buffer): Promise<void> {
    const s = this.#stream;
    if (this.#sealed) return Promise.reject(this.#sealed);
    if (this.#closed || s.destroyed || s.writableEnded) {
      return Promise.reject(new ProtocolError(`connection to ${this.#peer} is closed`));
    }
    const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
    header[0] = type;
    header.writeUInt32BE(payload.length, 1);
    // The header shares a write (an SSH packet) with the first payload bytes; the rest
    // of the payload is written as it is, uncopied.
    let ok: boolean;
    if (payload.length <= HEAD_COALESCE) ok = s.write(Buffer.concat([header, payload]));
    else {
      const headOk = s.write(Buffer.concat([header, payload.subarray(0, HEAD_COALESCE)]));
      ok = s.write(payload.subarray(HEAD_COALESCE)) && headOk;
    }
    if (ok && !s.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        s.off('drain', onDrain);
        s.off('close', onClose);
        s.off('error', onError);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new ProtocolError(`connection to ${this.#peer} closed`));
      const onError = (err: Error) => done(err);
      if (this.#closed) {
        onClose();
        return;
      }
      s.on('drain', onDrain);
      s.on('close', onClose);
      s.on('error', onError);
      this.#waiting.add(done);
      if (this.#idleMs > 0) {
        // Idle means no progress: the buffer shrinking (the peer reading slowly) re-arms the timer.
        let queued = s.writableLength;
        const check = () => {
          if (s.writableLength < queued) {
            queued = s.writableLength;
            timer = setTimeout(check, this.#idleMs);
            return;
          }
          const err = new TimeoutError(
            `the ${this.#peer} read nothing for ${seconds(this.#idleMs)} (idle limit); closing the session`,
          );
          done(err);
          this.#onIdle?.(err);
        };
        timer = setTimeout(check, this.#idleMs);
      }
    });
  }

  /** Ends the stream (no more frames). */
  end(): void {
    if (!this.#stream.writableEnded && !this.#stream.destroyed) this.#stream.end();
  }
}
