/**
 * Stages that carry a send stream inside protocol frames, used on both ends
 * of an SSH channel: {@link frameSource} turns incoming data frames back into
 * bytes, {@link frameSink} turns bytes into outgoing data frames.
 *
 * Buffering/backpressure: the source reads the next frame only while its
 * readable side wants data (`push()` returned true or `_read` was called
 * again), so a slow consumer leaves frames unread in the channel, whose flow
 * control then stops the peer. The sink's write callback waits until the
 * channel accepted the frame without exceeding its highWaterMark (`drain`),
 * so it holds at most its own highWaterMark (256 KiB) plus one frame.
 */
import { Readable, Writable } from 'node:stream';
import { AbortedError, UsageError } from '../errors.js';
import { destroyOnAbort, handled, sinkStage, sourceStage } from '../streams/stage.js';
import type { SinkStage, SourceStage, StageOptions } from '../streams/stage.js';
import { ProtocolError } from './frame.js';
import type { FrameReader, FrameWriter } from './frame.js';

const HIGH_WATER_MARK = 256 * 1024;

/** Options of {@link frameSource}. */
export interface FrameSourceOptions extends StageOptions {
  /** Stage name, e.g. `ssh-read`. */
  name: string;
  /** Called on the first read; resolves with the reader the frames come from (e.g. after opening a channel). */
  open: () => Promise<FrameReader>;
  /**
   * Called for each control message between data frames with the byte count so
   * far. Return `'end'` at the message that ends the stream, `'continue'` to go
   * on; throw to fail the stream (a remote error, an abort message).
   */
  onControl: (message: unknown, bytes: number) => 'end' | 'continue';
  /** Runs after the end message and before the stream ends (e.g. check the remote exit status). */
  onEnd?: () => Promise<void>;
  /** Runs when the stream is destroyed before its end: close the channel so the peer stops. */
  onDestroy?: (err: Error | null) => Promise<void> | void;
}

/**
 * A source stage of the bytes carried in data frames. Contract: ends only
 * after `onControl` returned `'end'` and `onEnd` resolved; a clean end of the
 * frame stream before that is a ProtocolError ("connection closed before the
 * end of the stream"). Result: bytes delivered.
 */
export function frameSource(opts: FrameSourceOptions): SourceStage<number> {
  if (typeof opts.open !== 'function' || typeof opts.onControl !== 'function') {
    throw new UsageError('frameSource: open and onControl must be functions');
  }
  let bytes = 0;
  let started = false;
  let ended = false;
  let resume: (() => void) | undefined;
  const stream = new Readable({
    highWaterMark: HIGH_WATER_MARK,
    read() {
      if (started) {
        const r = resume;
        resume = undefined;
        r?.();
        return;
      }
      started = true;
      pump().catch((err: unknown) => stream.destroy(err as Error));
    },
    destroy(err, cb) {
      const r = resume;
      resume = undefined;
      r?.();
      if (ended || !opts.onDestroy) {
        cb(err);
        return;
      }
      Promise.resolve()
        .then(() => opts.onDestroy?.(err))
        .then(
          () => cb(err),
          () => cb(err),
        );
    },
  });
  const pump = async () => {
    const reader = await opts.open();
    for (;;) {
      if (stream.destroyed) return;
      const frame = await reader.next();
      if (stream.destroyed) return;
      if (frame === null) {
        throw new ProtocolError('connection closed before the end of the stream');
      }
      if (frame.kind === 'data') {
        bytes += frame.length;
        let more = true;
        for (const part of frame.parts) more = stream.push(part);
        if (!more) await new Promise<void>((r) => (resume = r));
        continue;
      }
      if (opts.onControl(frame.message, bytes) === 'end') {
        await opts.onEnd?.();
        ended = true;
        stream.push(null);
        return;
      }
    }
  };
  destroyOnAbort(stream, opts.signal);
  const result = handled(
    new Promise<number>((resolve, reject) => {
      stream.once('end', () => resolve(bytes));
      stream.once('close', () => {
        if (!stream.readableEnded) {
          reject(stream.errored ?? new AbortedError(`${opts.name} destroyed before the end`));
        }
      });
    }),
  );
  return sourceStage(opts.name, stream, result);
}

/** Options of {@link frameSink}. */
export interface FrameSinkOptions<R> extends StageOptions {
  /** Stage name, e.g. `ssh-write`. */
  name: string;
  /** Where the data frames go. */
  writer: FrameWriter;
  /** Runs after the last byte was framed: send the end message, wait for the peer's commit. Its value is the result. */
  finish: (bytes: number) => Promise<R>;
  /** Runs when the stage is destroyed before `finish` resolved: tell the peer and close. Never throws. */
  abort: (err: Error) => Promise<void>;
  /** Maps a failed frame write to the error the stage fails with (e.g. "connection lost"). Default: the error itself. */
  writeError?: (err: Error) => Promise<Error>;
}

/**
 * A sink stage that frames every byte written into data frames. Contract:
 * finishes only after `finish` resolved (the peer committed); a stage
 * destroyed before that runs `abort` once, and its result rejects.
 */
export function frameSink<R>(opts: FrameSinkOptions<R>): SinkStage<R> {
  let bytes = 0;
  let finished = false;
  let value: R | undefined;
  const stream = new Writable({
    highWaterMark: HIGH_WATER_MARK,
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      opts.writer.data(chunk).then(
        () => cb(),
        (err: Error) => {
          if (!opts.writeError) return cb(err);
          opts.writeError(err).then(cb, () => cb(err));
        },
      );
    },
    final(cb) {
      opts.finish(bytes).then(
        (v) => {
          value = v;
          finished = true;
          cb();
        },
        (err: unknown) => cb(err as Error),
      );
    },
    destroy(err, cb) {
      if (finished) {
        cb(err);
        return;
      }
      opts
        .abort(err ?? new AbortedError(`${opts.name} destroyed before the end`))
        .catch(() => undefined)
        .then(() => cb(err));
    },
  });
  destroyOnAbort(stream, opts.signal);
  const result = handled(
    new Promise<R>((resolve, reject) => {
      stream.once('finish', () => resolve(value as R));
      stream.once('close', () => {
        if (!finished) {
          reject(stream.errored ?? new AbortedError(`${opts.name} destroyed before the end`));
        }
      });
    }),
  );
  return sinkStage(opts.name, stream, result);
}
