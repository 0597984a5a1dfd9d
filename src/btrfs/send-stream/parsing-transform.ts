/**
 * The skeleton of a stage that parses a send stream as it passes on its own
 * parse (clone-to-write, which reads files and so cannot share one; the other
 * parsing stages are passes, see stream-pass.ts): a Transform whose parser is built
 * asynchronously before the first chunk (CRC engines load asynchronously),
 * whose per-chunk and end-of-stream work is the stage's own, and where any
 * throw (a StreamCorruptError, say) errors the stream.
 */
import { Transform } from 'node:stream';
import { UsageError } from '../../errors.js';
import { destroyOnAbort, streamDone, transformStage } from '../../streams/stage.js';
import type { TransformStage } from '../../streams/stage.js';
import type { SendStreamParser } from './parser.js';

/** What a parsing stage supplies to {@link parsingTransform}. */
export interface ParsingTransformHooks {
  /** Builds the parser (and anything else that loads asynchronously) once, before the first chunk. */
  setup(): Promise<SendStreamParser>;
  /** Handles one input chunk: feed the parser, `push` what may pass. */
  onChunk(parser: SendStreamParser, chunk: Buffer, push: (bytes: Buffer) => void): void;
  /** After `parser.end()` succeeded: push what is left and record results. */
  onEnd(parser: SendStreamParser, push: (bytes: Buffer) => void): void;
}

/** Creates the Transform; buffering is the hooks' (they decide what to push when). */
export function parsingTransform(hooks: ParsingTransformHooks): Transform {
  let parser: SendStreamParser | undefined;
  return new Transform({
    construct(callback) {
      hooks.setup().then(
        (p) => {
          parser = p;
          callback();
        },
        (err: unknown) => callback(err as Error),
      );
    },
    transform(chunk: Buffer, _encoding, callback) {
      try {
        hooks.onChunk(parser!, chunk, (bytes) => this.push(bytes));
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        parser!.end();
        hooks.onEnd(parser!, (bytes) => this.push(bytes));
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}

/**
 * Makes a parsing Transform a stage named `name`: destroyed when `signal` aborts, its
 * `result` is `summary()` once the output was read to its end (the hooks' `onEnd` ran).
 */
export function parsingStage<R>(
  name: string,
  stream: Transform,
  signal: AbortSignal | undefined,
  summary: () => R,
): TransformStage<R> {
  destroyOnAbort(stream, signal);
  return transformStage(name, stream, streamDone(stream).then(summary));
}

/** Validates a stage's `maxCommandLength` option; returns it (undefined: the parser's default). */
export function checkMaxCommandLength(
  stage: string,
  value: number | undefined,
): number | undefined {
  if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
    throw new UsageError(`${stage}: maxCommandLength must be a positive integer`);
  }
  return value;
}
