/**
 * A transform stage around a WHATWG-streams transformation (`ReadableStream` in,
 * `ReadableStream` out), for libraries that stream only that way (age-encryption).
 *
 * Buffering and backpressure: the writable side is a PassThrough of 64 KiB handed to
 * the library as a web stream (`Readable.toWeb`), which pulls from it only as the
 * output is read; the output is read one chunk at a time by an async generator into
 * the readable side (64 KiB highWaterMark). Memory is those buffers plus whatever
 * the library holds per chunk (age: one 64 KiB chunk).
 *
 * Completion and teardown: the readable side ends when the library's output ended;
 * an error of the library (mapped by `mapError`) errors the stage. Destroying the
 * stage cancels the library's output stream and destroys the input.
 */
import { Duplex, PassThrough, Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { destroyOnAbort, transformStage } from './stage.js';
import type { StageOptions, TransformStage } from './stage.js';

/** Options of {@link webTransformStage}. */
export interface WebTransformOptions extends StageOptions {
  /** Turns the library's errors into the error the stage fails with. Default: as thrown. */
  mapError?: (err: unknown) => Error;
}

const BUFFER = 64 * 1024;

/** Makes a transform stage whose bytes go through `transform`. */
export function webTransformStage(
  name: string,
  transform: (input: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>,
  opts: WebTransformOptions = {},
): TransformStage<void> {
  const input = new PassThrough({ highWaterMark: BUFFER });
  const mapError = opts.mapError ?? ((err: unknown) => err as Error);
  async function* output(): AsyncGenerator<Buffer> {
    try {
      const out = await transform(Readable.toWeb(input) as ReadableStream<Uint8Array>);
      for await (const c of out) yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    } catch (err) {
      throw mapError(err);
    }
  }
  const readable = Readable.from(output(), { objectMode: false, highWaterMark: BUFFER });
  const stream = Duplex.from({ readable, writable: input });
  destroyOnAbort(stream, opts.signal);
  return transformStage(name, stream);
}
