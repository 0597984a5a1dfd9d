import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { AbortedError, UsageError } from '../../../src/errors.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import {
  chunker,
  growingPartSize,
  type ChunkerStream,
  type Part,
} from '../../../src/streams/chunker.js';
import { sinkStage, sourceStage } from '../../../src/streams/stage.js';
import { trackUnhandled } from './helpers.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

function partsSink(delayMs = 0) {
  const parts: Part[] = [];
  const stream = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(p: Part, _e, cb) {
      parts.push(p);
      if (delayMs > 0) setTimeout(cb, delayMs);
      else cb();
    },
  });
  return { parts, stage: sinkStage('parts', stream) };
}

/** Bytes 0..n-1 (mod 251) cut into chunks of the given sizes, cycling. */
function patterned(n: number, chunkSizes: number[]) {
  const all = Buffer.alloc(n);
  for (let i = 0; i < n; i++) all[i] = i % 251;
  const chunks: Buffer[] = [];
  for (let pos = 0, k = 0; pos < n; k++) {
    const size = chunkSizes[k % chunkSizes.length] as number;
    chunks.push(all.subarray(pos, pos + size));
    pos += size;
  }
  return { all, chunks };
}

async function chunk(chunks: Buffer[], opts: Parameters<typeof chunker>[0]) {
  const { parts, stage } = partsSink();
  const c = chunker(opts);
  const out = await runPipeline([
    sourceStage('src', Readable.from(chunks, { objectMode: false })),
    c,
    stage,
  ]);
  return { parts, result: out.results[1] };
}

function checkFrames(parts: Part[], all: Buffer, sizeFor: (i: number) => number) {
  let offset = 0;
  parts.forEach((p, i) => {
    assert.equal(p.index, i);
    assert.equal(p.partNumber, i + 1);
    assert.equal(p.offset, offset);
    assert.equal(p.last, i === parts.length - 1);
    if (!p.last) assert.equal(p.data.length, sizeFor(i));
    else assert.ok(p.data.length <= sizeFor(i));
    offset += p.data.length;
  });
  assert.ok(Buffer.concat(parts.map((p) => p.data)).equals(all));
}

describe('chunker', () => {
  for (const [label, n, sizes] of [
    ['small chunks', 1000, [7, 13, 1]],
    ['chunks spanning several parts', 1000, [333, 250]],
    ['exact multiple of the part size', 1000, [100]],
    ['one byte over a multiple', 1001, [64]],
    ['less than one part', 42, [5]],
  ] as const) {
    it(`cuts exact parts: ${label}`, async () => {
      const { all, chunks } = patterned(n, [...sizes]);
      const { parts, result } = await chunk(chunks, { partSize: 100 });
      checkFrames(parts, all, () => 100);
      assert.equal(parts.length, Math.ceil(n / 100));
      assert.deepEqual(result, { parts: parts.length, bytes: n });
    });
  }

  it('emits one empty last part for an empty stream', async () => {
    const { parts, result } = await chunk([], { partSize: 10 });
    assert.equal(parts.length, 1);
    assert.deepEqual(
      { ...parts[0], data: parts[0]?.data.length },
      {
        index: 0,
        partNumber: 1,
        offset: 0,
        data: 0,
        last: true,
      },
    );
    assert.deepEqual(result, { parts: 1, bytes: 0 });
  });

  it('does not copy a part that lies inside one input chunk', async () => {
    const big = Buffer.alloc(1000, 7);
    const { parts } = await chunk([big], { partSize: 300 });
    assert.equal(parts.length, 4);
    for (const p of parts) assert.equal(p.data.buffer, big.buffer);
  });

  it('follows a custom partSizeFor', async () => {
    const sizeFor = (i: number) => 10 * (i + 1);
    const { all, chunks } = patterned(500, [17]);
    const { parts } = await chunk(chunks, { partSize: 10, partSizeFor: sizeFor });
    checkFrames(parts, all, sizeFor);
  });

  it('fails with a UsageError past maxParts, and on a bad partSizeFor', async () => {
    const track = trackUnhandled();
    const { chunks } = patterned(1000, [64]);
    await assert.rejects(
      chunk(chunks, { partSize: 10, partSizeFor: () => 10, maxParts: 5 }),
      UsageError,
    );
    await assert.rejects(chunk(chunks, { partSize: 10, partSizeFor: () => 0.5 }), UsageError);
    assert.deepEqual(await track.stop(), []);
  });

  it('fits a stream of maxBytes into maxParts with the growth policy', async () => {
    const { all, chunks } = patterned(5000, [97]);
    const opts = { partSize: 10, maxParts: 20, maxBytes: 5000, maxPartSize: 1000 };
    const { parts } = await chunk(chunks, opts);
    assert.ok(parts.length <= 20, `${parts.length} parts`);
    checkFrames(parts, all, growingPartSize(opts));
    assert.ok((parts[0]?.data.length ?? 0) === 10);
  });

  it('validates its options', () => {
    assert.throws(() => chunker({ partSize: 0 }), UsageError);
    assert.throws(() => chunker({ partSize: 1.5 }), UsageError);
    assert.throws(() => chunker({ partSize: 10, maxParts: 0 }), UsageError);
    assert.throws(() => chunker({ partSize: 10, highWaterMark: -1 }), UsageError);
    assert.throws(
      () => chunker({ partSize: 10, maxParts: 2, maxBytes: 100, maxPartSize: 20 }),
      UsageError,
    );
  });

  it('bounds memory with a slow consumer: one part waiting, one assembling', async () => {
    const partSize = 100_000;
    const chunkSize = 64 * 1024;
    const hwm = 16 * 1024;
    let produced = 0;
    const total = 40 * partSize;
    const src = sourceStage(
      'fast',
      new Readable({
        highWaterMark: hwm,
        read() {
          const n = Math.min(chunkSize, total - produced);
          produced += n;
          this.push(n > 0 ? Buffer.alloc(n, 1) : null);
        },
      }),
    );
    const c = chunker({ partSize, highWaterMark: hwm });
    const cs = c.stream as ChunkerStream;
    let maxReadable = 0;
    let maxPending = 0;
    let maxWritable = 0;
    const sample = () => {
      maxReadable = Math.max(maxReadable, cs.readableLength);
      maxPending = Math.max(maxPending, cs.pendingBytes);
      maxWritable = Math.max(maxWritable, cs.writableLength);
    };
    const timer = setInterval(sample, 1);
    const parts: number[] = [];
    const sink = sinkStage(
      'slow',
      new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(p: Part, _e, cb) {
          sample();
          parts.push(p.data.length);
          setTimeout(cb, 3);
        },
      }),
    );
    try {
      await runPipeline([src, c, sink]);
    } finally {
      clearInterval(timer);
    }
    assert.equal(parts.length, 40);
    assert.ok(maxReadable <= 1, `readable buffer held ${maxReadable} parts`);
    assert.ok(maxPending <= partSize, `chunker held ${maxPending} bytes`);
    assert.ok(maxWritable <= hwm + chunkSize, `writable buffer held ${maxWritable} bytes`);
    // The producer never ran far ahead of the consumer.
    assert.equal(produced, total);
  });
});

describe('chunker teardown', () => {
  it('settles its result when the pipeline is aborted while it waits for the reader', async () => {
    const track = trackUnhandled();
    const ac = new AbortController();
    const c = chunker({ partSize: 1000 });
    const { stage } = partsSink(1000);
    const src = sourceStage(
      'endless',
      new Readable({
        read() {
          this.push(Buffer.alloc(300));
        },
      }),
    );
    const run = runPipeline([src, c, stage], { signal: ac.signal });
    setTimeout(() => ac.abort('stop'), 20);
    await assert.rejects(run, AbortedError);
    await assert.rejects(c.result);
    assert.ok(c.stream.destroyed);
    assert.deepEqual(await track.stop(), []);
  });
});

describe('growingPartSize', () => {
  const capacity = (f: (i: number) => number, maxParts = 10_000) => {
    let t = 0;
    for (let i = 0; i < maxParts; i++) t += f(i);
    return t;
  };

  for (const partSize of [5 * MiB, 8 * MiB, 100 * MiB, 1 * GiB]) {
    it(`fits 5 TiB in 10,000 parts from ${partSize / MiB} MiB parts, growing as late as possible`, () => {
      const f = growingPartSize({ partSize });
      assert.equal(f(0), partSize);
      assert.ok(capacity(f) >= 5 * TiB);
      for (let i = 1; i < 10_000; i++) {
        assert.ok(f(i) >= (f(i - 1) as number) && f(i) <= 5 * GiB);
      }
      let firstGrowth = 0;
      while (firstGrowth < 10_000 && f(firstGrowth) === partSize) firstGrowth++;
      // One more part at the initial size would no longer reach 5 TiB.
      if (firstGrowth < 10_000) {
        const later = (i: number) =>
          Math.min(5 * GiB, partSize * 2 ** Math.floor(i / (firstGrowth + 1)));
        assert.ok(capacity(later) < 5 * TiB);
      }
    });
  }

  it('keeps 100 MiB parts for the first 2,195 parts', () => {
    const f = growingPartSize({ partSize: 100 * MiB });
    assert.equal(f(2194), 100 * MiB);
    assert.equal(f(2195), 200 * MiB);
    assert.equal(f(9999), 1600 * MiB);
  });

  it('does not grow when the parts already reach maxBytes', () => {
    const f = growingPartSize({ partSize: 1 * GiB });
    assert.equal(f(9_999), 1 * GiB);
  });
});

describe('chunker digests', () => {
  const hex = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');

  for (const [label, n, sizes] of [
    ['small chunks', 1000, [7, 13, 1]],
    ['parts inside one chunk (views)', 1000, [1000]],
    ['chunks spanning several parts', 1001, [333, 250]],
  ] as const) {
    it(`each part's MD5 and SHA-256 are those of its bytes: ${label}`, async () => {
      const { all, chunks } = patterned(n, [...sizes]);
      const { parts } = await chunk(chunks, { partSize: 100, hashes: ['md5', 'sha256'] });
      checkFrames(parts, all, () => 100);
      for (const p of parts) {
        assert.equal(p.digests?.md5?.toString('hex'), hex('md5', p.data), `part ${p.partNumber}`);
        assert.equal(p.digests?.sha256?.toString('hex'), hex('sha256', p.data));
      }
    });
  }

  it('an empty stream has the digests of nothing; without hashes a part has none', async () => {
    const { parts } = await chunk([], { partSize: 10, hashes: ['md5'] });
    assert.equal(parts[0]?.digests?.md5?.toString('hex'), hex('md5', Buffer.alloc(0)));
    const plain = await chunk([Buffer.alloc(25, 1)], { partSize: 10 });
    assert.ok(plain.parts.every((p) => p.digests === undefined));
  });

  it('refuses an unknown hash', () => {
    assert.throws(() => chunker({ partSize: 10, hashes: ['crc32' as 'md5'] }), UsageError);
  });
});
