import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import {
  DATA_FRAME_SIZE,
  FRAME_HEADER_SIZE,
  FrameReader,
  FrameWriter,
} from '../../../src/wire/frame.js';
import { frameSink, frameSource } from '../../../src/wire/frame-stages.js';
import { eventLoopTurns, waitFor } from '../../fixtures/wait-for.js';

const limits = { maxJson: 1024, peer: 'peer' };

describe('frame stages', () => {
  it('carry bytes through frames, ending only at the end message', async () => {
    const wire = new PassThrough({ highWaterMark: 1 << 24 });
    const sink = frameSink({
      name: 'w',
      writer: new FrameWriter(wire, { peer: 'p' }),
      finish: async (bytes) => {
        await new FrameWriter(wire, { peer: 'p' }).json({ type: 'end', bytes });
        return bytes;
      },
      abort: async () => undefined,
    });
    const data = Buffer.alloc(1_000_000, 3);
    sink.stream.end(data);
    assert.equal(await sink.result, 1_000_000);
    const reader = new FrameReader(wire, limits);
    const source = frameSource({
      name: 'r',
      open: async () => reader,
      onControl: (m, bytes) => {
        assert.deepEqual(m, { type: 'end', bytes });
        return 'end';
      },
    });
    const chunks: Buffer[] = [];
    await pipeline(source.stream, new Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) }));
    assert.deepEqual(Buffer.concat(chunks), data);
    assert.equal(await source.result, 1_000_000);
  });

  it('fails when the frames stop before the end message', async () => {
    const wire = new PassThrough();
    await new FrameWriter(wire, { peer: 'p' }).data(Buffer.alloc(10));
    wire.end();
    let destroyed = false;
    const source = frameSource({
      name: 'r',
      open: async () => new FrameReader(wire, limits),
      onControl: () => 'end',
      onDestroy: () => {
        destroyed = true;
      },
    });
    source.stream.on('error', () => undefined).resume();
    await assert.rejects(source.result, /connection closed before the end of the stream/);
    assert.equal(destroyed, true);
  });

  it('a slow consumer holds the producer back (bounded memory)', async () => {
    const wire = new PassThrough({ highWaterMark: 64 * 1024 });
    const writer = new FrameWriter(wire, { peer: 'p' });
    let produced = 0;
    const total = 64 * 1024 * 1024;
    const producer = (async () => {
      const chunk = Buffer.alloc(64 * 1024);
      while (produced < total) {
        await writer.data(chunk);
        produced += chunk.length;
      }
      await writer.json({ type: 'end', bytes: total });
    })();
    const source = frameSource({
      name: 'r',
      open: async () => new FrameReader(wire, limits),
      onControl: () => 'end',
    });
    let consumed = 0;
    let maxAhead = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(c: Buffer, _e, cb) {
        consumed += c.length;
        maxAhead = Math.max(maxAhead, produced - consumed);
        if (consumed < 4 * 1024 * 1024) setImmediate(cb);
        else cb();
      },
    });
    await Promise.all([pipeline(source.stream, slow), producer]);
    assert.equal(consumed, total);
    assert.ok(maxAhead < 2 * 1024 * 1024, `producer ran ${maxAhead} bytes ahead of the consumer`);
  });

  it('a stalled receiver holds a sink fed 1 MiB chunks to a few MiB, whatever the stream size', async () => {
    // The wire stands for an SSH channel whose window is closed: nobody reads it.
    const wire = new PassThrough({ highWaterMark: 2 * 1024 * 1024 });
    const sink = frameSink({
      name: 'w',
      writer: new FrameWriter(wire, { peer: 'p' }),
      finish: async (bytes) => bytes,
      abort: async () => undefined,
    });
    const total = 1024 * 1024 * 1024;
    let produced = 0;
    const source = new Readable({
      highWaterMark: 1024 * 1024,
      read() {
        if (produced >= total) return void this.push(null);
        produced += 1024 * 1024;
        this.push(Buffer.allocUnsafe(1024 * 1024));
      },
    });
    const done = pipeline(source, sink.stream);
    await waitFor(() => wire.writableNeedDrain, { what: 'the wire to fill up' });
    await eventLoopTurns(20);
    const stalledAt = produced;
    // Source and sink buffers (one chunk each), one frame in flight, the wire's 2 MiB.
    assert.ok(stalledAt <= 8 * 1024 * 1024, `pulled ${stalledAt} bytes while stalled`);
    assert.ok(wire.writableLength <= 3 * 1024 * 1024, `wire holds ${wire.writableLength}`);
    await eventLoopTurns(100);
    assert.equal(produced, stalledAt, 'nothing more is pulled while the receiver stalls');
    let received = 0;
    wire.on('data', (c: Buffer) => (received += c.length));
    await done;
    assert.equal(await sink.result, total);
    assert.equal(received, total + Math.ceil(total / DATA_FRAME_SIZE) * FRAME_HEADER_SIZE);
  });
});
