/**
 * Fake stages on plain Node streams for the stream-framework tests, and an
 * `unhandledRejection` recorder.
 */
import { Readable, Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import {
  handled,
  sinkStage,
  sourceStage,
  type SinkStage,
  type SourceStage,
} from '../../../src/streams/stage.js';

/** A source of `count` chunks of `size` bytes (byte value = chunk index), produced lazily. */
export function countingSource(count: number, size: number, name = 'fake-source'): SourceStage {
  let i = 0;
  const stream = new Readable({
    read() {
      if (i >= count) this.push(null);
      else this.push(Buffer.alloc(size, i++ & 0xff));
    },
  });
  return sourceStage(name, stream);
}

/** A source that never ends: a fresh chunk per read, asynchronously. */
export function endlessSource(size = 1024): SourceStage {
  const stream = new Readable({
    read() {
      setImmediate(() => this.push(Buffer.alloc(size, 1)));
    },
  });
  return sourceStage('endless', stream);
}

/** A sink that keeps every chunk; `result` is their concatenation. */
export function collectSink(): SinkStage<Buffer> {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const stage = sinkStage('collect', stream);
  return { ...stage, result: handled(stage.result.then(() => Buffer.concat(chunks))) };
}

/** Records `unhandledRejection`s while installed; `stop()` returns what it saw. */
export function trackUnhandled(): { stop: () => Promise<unknown[]> } {
  const seen: unknown[] = [];
  const on = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', on);
  return {
    async stop() {
      // Let pending rejections surface (they are reported after microtasks drain).
      for (let i = 0; i < 5; i++) await tick();
      await new Promise((r) => setTimeout(r, 20));
      process.off('unhandledRejection', on);
      return seen;
    },
  };
}
