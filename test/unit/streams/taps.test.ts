import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { AbortedError, UsageError } from '../../../src/errors.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { byteCounter, isByteCounter } from '../../../src/streams/byte-counter.js';
import { hashTap } from '../../../src/streams/hash-tap.js';
import { progressTap, type Progress } from '../../../src/streams/progress-tap.js';
import { tapStage } from '../../../src/streams/make-stage.js';
import { sinkStage, sourceStage } from '../../../src/streams/stage.js';
import { collectSink, countingSource, trackUnhandled } from './helpers.js';

describe('byteCounter', () => {
  it('counts and passes the very same Buffers through', async () => {
    const sent = [Buffer.from('abc'), Buffer.from('defgh')];
    const got: Buffer[] = [];
    const sink = sinkStage(
      'same',
      new Writable({
        write(c: Buffer, _e, cb) {
          got.push(c);
          cb();
        },
      }),
    );
    const counter = byteCounter();
    assert.ok(isByteCounter(counter));
    const out = await runPipeline([sourceStage('s', Readable.from(sent)), counter, sink]);
    assert.equal(out.results[1], 8);
    assert.equal(counter.bytes, 8);
    assert.equal(got[0], sent[0]);
    assert.equal(got[1], sent[1]);
  });

  it('rejects its result when destroyed, and on abort with AbortedError', async () => {
    const c = byteCounter();
    c.stream.destroy(new Error('x'));
    await assert.rejects(c.result, /x/);
    const ac = new AbortController();
    const d = byteCounter({ signal: ac.signal });
    ac.abort('why');
    await assert.rejects(d.result, (e: unknown) => e instanceof AbortedError && e.cause === 'why');
  });

  it('validates its options', () => {
    assert.throws(() => byteCounter({ highWaterMark: -1 }), UsageError);
  });
});

describe('hashTap', () => {
  const data = Buffer.from('123456789');
  for (const algorithm of ['sha256', 'md5', 'sha1']) {
    it(`computes ${algorithm} like node:crypto`, async () => {
      const out = await runPipeline([
        countingSource(50, 3000),
        hashTap({ algorithm }),
        collectSink(),
      ]);
      const [, digest, bytes] = out.results;
      assert.equal(digest, createHash(algorithm).update(bytes).digest('hex'));
    });
  }

  it('computes CRC-32C (check value e3069283) and base64 output', async () => {
    const crc = hashTap({ algorithm: 'crc32c' });
    const md5 = hashTap({ algorithm: 'md5', encoding: 'base64' });
    const out = await runPipeline([
      sourceStage('s', Readable.from([data.subarray(0, 4), data.subarray(4)])),
      crc,
      md5,
      collectSink(),
    ]);
    assert.equal(out.results[1], 'e3069283');
    assert.equal(out.results[2], createHash('md5').update(data).digest('base64'));
  });

  it('rejects unknown algorithms and encodings', () => {
    assert.throws(() => hashTap({ algorithm: 'nope' }), UsageError);
    // @ts-expect-error not a supported encoding
    assert.throws(() => hashTap({ algorithm: 'md5', encoding: 'latin1' }), UsageError);
  });
});

describe('progressTap', () => {
  it('throttles reports and ends with one final report', async (t) => {
    const reports: Progress[] = [];
    let i = 0;
    // A clock the source moves 5 ms per chunk: the throttle is checked against
    // it, not against how fast this machine runs.
    let clock = 1000;
    t.mock.method(performance, 'now', () => clock);
    const src = sourceStage(
      'slow',
      new Readable({
        read() {
          if (i++ >= 20) return void this.push(null);
          clock += 5;
          this.push(Buffer.alloc(1000));
        },
      }),
    );
    const tap = progressTap({ total: 40_000, intervalMs: 30, onProgress: (p) => reports.push(p) });
    const out = await runPipeline([src, tap, collectSink()]);
    const final = reports.at(-1);
    assert.ok(final?.done);
    assert.deepEqual(out.results[1], final);
    assert.equal(final.bytes, 20_000);
    assert.equal(final.total, 40_000);
    assert.equal(final.etaMs, 0);
    assert.ok(final.rate > 0);
    const middle = reports.slice(0, -1);
    // Chunks at 5, 10, … 100 ms after the first: reports at 30, 60 and 90 ms.
    assert.deepEqual(
      middle.map((p) => p.elapsedMs),
      [30, 60, 90],
    );
    for (const p of middle) {
      assert.equal(p.done, false);
      assert.ok(p.etaMs !== undefined && p.etaMs > 0);
    }
    for (let k = 1; k < middle.length; k++) {
      const a = middle[k - 1] as Progress;
      const b = middle[k] as Progress;
      assert.ok(b.elapsedMs - a.elapsedMs >= 30);
    }
  });

  it('reports once for an empty stream, without total fields', async () => {
    const reports: Progress[] = [];
    await runPipeline([
      countingSource(0, 1),
      progressTap({ onProgress: (p) => reports.push(p) }),
      collectSink(),
    ]);
    assert.deepEqual(reports, [{ bytes: 0, rate: 0, elapsedMs: 0, done: true }]);
  });

  it('fails the pipeline when onProgress throws', async () => {
    const track = trackUnhandled();
    const boom = new Error('bad callback');
    const tap = progressTap({
      intervalMs: 0,
      onProgress: () => {
        throw boom;
      },
    });
    await assert.rejects(
      runPipeline([countingSource(5, 10), tap, collectSink()]),
      (e: unknown) => e === boom,
    );
    assert.deepEqual(await track.stop(), []);
  });

  it('validates its options', () => {
    // @ts-expect-error onProgress is required
    assert.throws(() => progressTap({}), UsageError);
    assert.throws(() => progressTap({ onProgress: () => {}, total: -1 }), UsageError);
    assert.throws(() => progressTap({ onProgress: () => {}, intervalMs: NaN }), UsageError);
  });
});

describe('tapStage', () => {
  it('fails when onEnd throws', async () => {
    const boom = new Error('end');
    const t = tapStage({
      name: 't',
      onChunk: () => {},
      onEnd: () => {
        throw boom;
      },
    });
    await assert.rejects(
      runPipeline([countingSource(2, 2), t, collectSink()]),
      (e: unknown) => e === boom,
    );
  });
});
