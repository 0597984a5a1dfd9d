import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  DATA_FRAME_SIZE,
  FRAME_DATA,
  FRAME_HEADER_SIZE,
  FRAME_JSON,
  MAX_DATA_FRAME,
  FrameReader,
  FrameWriter,
  ProtocolError,
} from '../../../src/wire/frame.js';
import { eventLoopTurns } from '../../fixtures/wait-for.js';

function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** A readable delivering `bytes` in `size`-byte chunks, then ending. */
function chunked(bytes: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

const opts = { maxJson: 1024, maxData: 4096, peer: 'peer' };

describe('frames', () => {
  it('round-trips JSON and data frames whatever the chunking', async () => {
    const wire = new PassThrough();
    const w = new FrameWriter(wire, { peer: 'peer' });
    await w.json({ type: 'hello', n: 1 });
    await w.data(Buffer.alloc(3000, 7));
    await w.json({ type: 'end' });
    w.end();
    const bytes = Buffer.concat(await wire.toArray());
    for (const size of [1, 3, 7, 4096, bytes.length]) {
      const r = new FrameReader(chunked(bytes, size), opts);
      assert.deepEqual(await r.next(), { kind: 'json', message: { type: 'hello', n: 1 } });
      const d = await r.next();
      assert.equal(d?.kind, 'data');
      assert.deepEqual(d?.kind === 'data' && Buffer.concat(d.parts), Buffer.alloc(3000, 7));
      assert.equal(d?.kind === 'data' && d.length, 3000);
      assert.deepEqual(await r.next(), { kind: 'json', message: { type: 'end' } });
      assert.equal(await r.next(), null, 'clean end at a frame boundary');
    }
  });

  it('hands a data frame over as views of the chunks it arrived in, not a copy', async () => {
    const wire = new PassThrough({ highWaterMark: 1 << 20 });
    const w = new FrameWriter(wire, { peer: 'peer' });
    await w.data(Buffer.alloc(30000, 9));
    w.end();
    const bytes = Buffer.concat(await wire.toArray());
    const r = new FrameReader(chunked(bytes, 10000), { ...opts, maxData: 65536 });
    const d = await r.next();
    assert.ok(d?.kind === 'data');
    assert.deepEqual(Buffer.concat(d.parts), Buffer.alloc(30000, 9));
    assert.ok(d.parts.length >= 3, 'one view per chunk the payload spans');
    // Every part lies in the memory of the input (one allocation here): nothing was copied.
    for (const part of d.parts) assert.equal(part.buffer, bytes.buffer);
  });

  it('splits large data into the fewest frames of at most 1 MiB, of equal size', async () => {
    assert.equal(DATA_FRAME_SIZE, MAX_DATA_FRAME);
    const wire = new PassThrough({ highWaterMark: 1 << 30 });
    const w = new FrameWriter(wire, { peer: 'p' });
    await w.data(Buffer.alloc(2.5 * 1024 * 1024));
    await w.data(Buffer.alloc(1024 * 1024));
    await w.data(Buffer.alloc(1024 * 1024 + 1));
    wire.end();
    const r = new FrameReader(wire, { ...opts, maxData: MAX_DATA_FRAME });
    const sizes: number[] = [];
    for (let f = await r.next(); f; f = await r.next()) if (f.kind === 'data') sizes.push(f.length);
    // 2.5 MiB: three frames of 873,814 bytes and the rest; 1 MiB + 1: two halves.
    assert.deepEqual(sizes, [873814, 873814, 873812, 1 << 20, (1 << 19) + 1, 1 << 19]);
  });

  it('writes each header with the first payload bytes, never alone', async () => {
    const writes: number[] = [];
    const wire = new Writable({
      highWaterMark: 1 << 30,
      write(c: Buffer, _e, cb) {
        writes.push(c.length);
        cb();
      },
    });
    const w = new FrameWriter(wire, { peer: 'p' });
    await w.data(Buffer.alloc(3 * 1024 * 1024));
    await w.data(Buffer.alloc(100));
    // Per 1 MiB frame: one SSH packet's worth (header + payload), then the rest uncopied.
    const frame = [32 * 1024, (1 << 20) + FRAME_HEADER_SIZE - 32 * 1024];
    assert.deepEqual(writes, [...frame, ...frame, ...frame, 100 + FRAME_HEADER_SIZE]);
  });

  it('rejects oversize, unknown, truncated and non-JSON frames', async () => {
    const bad = async (bytes: Buffer, re: RegExp) =>
      assert.rejects(new FrameReader(chunked(bytes, 64), opts).next(), (err: unknown) => {
        assert.ok(err instanceof ProtocolError);
        assert.match(err.message, re);
        return true;
      });
    await bad(frame(FRAME_JSON, Buffer.alloc(2000, 32)), /frame of 2000 bytes \(limit 1024\)/);
    await bad(frame(FRAME_DATA, Buffer.alloc(5000)), /limit 4096/);
    await bad(frame(9, Buffer.alloc(1)), /unknown frame type 9/);
    await bad(Buffer.from('Welcome to Debian!\n'), /unknown frame type 87 \(received "Welcome/);
    await bad(frame(FRAME_JSON, Buffer.from('{nope')), /not JSON/);
    await bad(frame(FRAME_DATA, Buffer.alloc(100)).subarray(0, 50), /middle of a frame/);
    await bad(Buffer.from([1, 0]), /middle of a frame/);
  });

  it('holds the writer back while the stream is full (backpressure)', async () => {
    const wire = new PassThrough({ highWaterMark: 1024 });
    const w = new FrameWriter(wire, { peer: 'p' });
    let done = false;
    const p = w.data(Buffer.alloc(512 * 1024)).then(() => (done = true));
    await eventLoopTurns(20);
    assert.equal(done, false, 'waits for drain');
    assert.ok(wire.writableLength <= 1024 * 1024 + 1024, `buffered ${wire.writableLength}`);
    wire.resume();
    await p;
    assert.equal(done, true);
  });

  it('rejects a pending write when the stream closes, and every later one', async () => {
    const wire = new PassThrough({ highWaterMark: 16 });
    const w = new FrameWriter(wire, { peer: 'p' });
    const p = w.data(Buffer.alloc(1000));
    wire.destroy();
    await assert.rejects(p, ProtocolError);
    await assert.rejects(w.json({ a: 1 }), /closed/);
  });

  it('discard() ends a pending next() with null and drains the stream', async () => {
    const wire = new PassThrough();
    const r = new FrameReader(wire, opts);
    const pending = r.next();
    r.discard();
    assert.equal(await pending, null);
    wire.write(Buffer.alloc(100000));
    wire.end();
    await new Promise((res) => wire.once('end', res));
  });
});
