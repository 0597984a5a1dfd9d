/**
 * A transform stage around a WHATWG-streams transformation (`ReadableStream` in,
 * `ReadableStream` out), for libraries that stream only that way (age-encryption).
 *
 * Buffering and backpressure: each chunk written is enqueued on the library's input
 * stream, and the write callback waits until the library pulled it (input queue
 * of one chunk); the readable side reads the library's output one chunk at a time,
 * only when asked (highWaterMark 64 KiB). Memory is those chunks plus whatever the
 * library holds (age: one 64 KiB chunk).
 *
 * Completion and teardown: the readable side ends when the library's output ended;
 * an error of the library fails the stage with `mapError(err)`, the only error it
 * reports (the library cancelling its input is not reported apart). Destroying the
 * stage cancels the library's output and input.
 */
import { Duplex } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import type { ReadableStreamDefaultController, ReadableStreamDefaultReader } from 'node:stream/web';
import { destroyOnAbort, transformStage } from './stage.js';
import type { StageOptions, TransformStage } from './stage.js';

/** Options of {@link webTransformStage}. */
export interface WebTransformOptions extends StageOptions {
  /** Turns the library's errors into the error the stage fails with. Default: as thrown. */
  mapError?: (err: unknown) => Error;
}

/** Makes a transform stage whose bytes go through `transform`. */
export function webTransformStage(
  name: string,
  transform: (input: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>,
  opts: WebTransformOptions = {},
): TransformStage<void> {
  const mapError = opts.mapError ?? ((err: unknown) => err as Error);
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  let waiting: (() => void) | undefined;
  let cancelled = false;
  const input = new ReadableStream<Uint8Array>(
    {
      start: (c) => void (ctrl = c),
      pull: () => {
        const w = waiting;
        waiting = undefined;
        w?.();
      },
      cancel: () => {
        cancelled = true;
        const w = waiting;
        waiting = undefined;
        w?.();
      },
    },
    { highWaterMark: 1 },
  );
  const output = transform(input).then((o) => o.getReader());
  output.catch(() => undefined);
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const stream = new Duplex({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, callback) {
      // After the library cancelled its input it has failed or finished: drop the bytes.
      if (cancelled) return callback();
      ctrl.enqueue(chunk);
      if ((ctrl.desiredSize ?? 0) > 0) callback();
      else waiting = () => callback();
    },
    final(callback) {
      if (!cancelled) ctrl.close();
      callback();
    },
    read() {
      output
        .then(async (r) => {
          reader = r;
          const { done, value } = await r.read();
          if (done) stream.push(null);
          else stream.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        })
        .catch((err: unknown) => stream.destroy(mapError(err)));
    },
    destroy(err, callback) {
      if (!cancelled) {
        cancelled = true;
        try {
          ctrl.error(err ?? new Error('destroyed'));
        } catch {
          // Already closed.
        }
      }
      reader?.cancel().catch(() => undefined);
      callback(err);
    },
  });
  destroyOnAbort(stream, opts.signal);
  return transformStage(name, stream);
}
