import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable, Writable } from 'node:stream';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { byteCounter } from '../../../src/streams/byte-counter.js';
import { hashTap } from '../../../src/streams/hash-tap.js';
import { progressTap } from '../../../src/streams/progress-tap.js';
import { sinkStage, sourceStage } from '../../../src/streams/stage.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('backpressure', () => {
  it('keeps a fast 200 MB source in step with a slow sink through the taps', async () => {
    const total = 200 * MiB;
    const chunkSize = 64 * KiB;
    const hwm = 64 * KiB;
    const block = Buffer.alloc(chunkSize, 0x5a);
    let produced = 0;
    let consumed = 0;
    const src = sourceStage(
      'fast',
      new Readable({
        highWaterMark: hwm,
        read() {
          // Lazily "generates" data: the same block every time, so memory is only what is buffered.
          const n = Math.min(chunkSize, total - produced);
          produced += n;
          this.push(n > 0 ? block.subarray(0, n) : null);
        },
      }),
    );
    const taps = [
      byteCounter({ highWaterMark: hwm }),
      progressTap({ onProgress: () => {}, total, highWaterMark: hwm }),
      hashTap({ algorithm: 'md5', highWaterMark: hwm }),
    ] as const;
    let writes = 0;
    const sink = sinkStage(
      'slow',
      new Writable({
        highWaterMark: hwm,
        write(chunk: Buffer, _e, cb) {
          consumed += chunk.length;
          sample();
          // Slow: yields to the timer queue regularly, so the source could run far ahead.
          if (++writes % 64 === 0) setTimeout(cb, 1);
          else setImmediate(cb);
        },
      }),
    );
    const stages = [src, ...taps, sink] as const;
    let maxBuffered = 0;
    let maxAhead = 0;
    function sample() {
      let buffered = 0;
      for (const s of stages) {
        const st = s.stream as Partial<Readable & Writable>;
        buffered += (st.readableLength ?? 0) + (st.writableLength ?? 0);
      }
      maxBuffered = Math.max(maxBuffered, buffered);
      maxAhead = Math.max(maxAhead, produced - consumed);
    }
    const out = await runPipeline(stages);
    assert.equal(out.bytes, total);
    // 5 streams, each buffering about one highWaterMark per side, plus a chunk in flight.
    const bound = 2 * stages.length * (hwm + chunkSize);
    assert.ok(maxBuffered <= bound, `buffered up to ${maxBuffered} bytes (bound ${bound})`);
    assert.ok(maxAhead <= bound, `source ran ${maxAhead} bytes ahead (bound ${bound})`);
    assert.ok(maxBuffered > 0);
  });
});
