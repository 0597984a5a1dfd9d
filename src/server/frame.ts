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
 * Frame sizes: a chunk becomes as few data frames of at most 1 MiB as it can,
 * of equal size (a 1.06 MiB chunk: two of 0.53 MiB, not 1 MiB and a sliver),
 * and each header goes out in one write with the first {@link HEAD_COALESCE}
 * payload bytes: an ssh2 channel turns every write into ≤ 32 KiB packets, so a
 * header written alone costs a packet (an encryption, a syscall) of its own,
 * and small frames cost per frame on both ends.
 */
import type { Readable, Writable } from 'node:stream';
import { ButtersinkError } from '../errors.js';

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

/** One frame as read. */
export type Frame = { kind: 'json'; message: unknown } | { kind: 'data'; data: Buffer };

/** Limits of a {@link FrameReader}; every frame larger than its limit is a ProtocolError. */
export interface FrameReaderOptions {
  /** Largest JSON payload accepted, bytes. */
  maxJson: number;
  /** Largest data payload accepted, bytes. Default {@link MAX_DATA_FRAME}. */
  maxData?: number;
  /** Names the peer in errors, e.g. `remote` or `client`. */
  peer: string;
}

/** Printable preview of bytes that were not a frame, for "wrong remote command" errors. */
function preview(bytes: Buffer): string {
  return JSON.stringify(bytes.subarray(0, 60).toString('latin1'));
}

/**
 * Reads frames from a byte stream. Contract: `next()` resolves with the next
 * frame, or null when the stream ended exactly at a frame boundary; it rejects
 * with a ProtocolError on a truncated or malformed frame, or with the stream's
 * error. Calls must not overlap.
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

  constructor(stream: Readable, opts: FrameReaderOptions) {
    this.#stream = stream;
    this.#maxJson = opts.maxJson;
    this.#maxData = opts.maxData ?? MAX_DATA_FRAME;
    this.#peer = opts.peer;
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

  async #fill(n: number): Promise<boolean> {
    while (this.#buffered < n) {
      if (this.#discarding) return false;
      const chunk = this.#stream.read() as Buffer | null;
      if (chunk !== null) {
        this.#chunks.push(chunk);
        this.#buffered += chunk.length;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#ended || this.#stream.destroyed) return false;
      await new Promise<void>((resolve) => (this.#wake = resolve));
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

  /** The next frame; null at a clean end of stream. */
  async next(): Promise<Frame | null> {
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
    const payload = this.#take(length);
    this.#frames += 1;
    if (type === FRAME_DATA) return { kind: 'data', data: payload };
    let message: unknown;
    try {
      message = JSON.parse(payload.toString('utf8'));
    } catch {
      throw new ProtocolError(`${this.#peer} sent a control message that is not JSON`);
    }
    return { kind: 'json', message };
  }
}

/**
 * Writes frames to a byte stream. Contract: each `json`/`data` call resolves
 * once its bytes were accepted by the stream without exceeding its
 * highWaterMark (after `drain` when needed), and rejects when the stream
 * errored or closed first. A frame's header and payload are written in one
 * tick, so frames from concurrent callers never interleave.
 */
export class FrameWriter {
  readonly #stream: Writable;
  readonly #peer: string;

  #closed = false;

  constructor(stream: Writable, opts: { peer: string }) {
    this.#stream = stream;
    this.#peer = opts.peer;
    // An ssh2 channel whose connection died neither errors nor drains: its `close` is the only sign.
    stream.once('close', () => (this.#closed = true));
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
      const done = (err?: Error) => {
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
    });
  }

  /** Ends the stream (no more frames). */
  end(): void {
    if (!this.#stream.writableEnded && !this.#stream.destroyed) this.#stream.end();
  }
}
