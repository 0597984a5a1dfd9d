/**
 * Memory of the btrfs transfer transforms on a long stream: uuid-rewrite →
 * stream-verify → uuid-rewrite (rename), as sync and the btrfs store chain
 * them, must hold only their stage buffers, whatever the stream's length. A
 * slice kept alive by any stage would pin its whole input chunk (a socket read,
 * an 8 MiB S3 range), so the input comes in large fresh chunks, split
 * mid-command, and the live ArrayBuffer total is sampled after a forced GC.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Attr, Cmd } from '../../../src/btrfs/send-stream/constants.js';
import { createSendCrc } from '../../../src/btrfs/send-stream/crc.js';
import {
  serializeCommand,
  serializeStreamHeader,
} from '../../../src/btrfs/send-stream/serialize.js';
import { uuidFromString, writeU64 } from '../../../src/btrfs/send-stream/values.js';
import { streamVerify } from '../../../src/stages/stream-verify.js';
import { uuidRewrite } from '../../../src/stages/uuid-rewrite.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { sinkStage, sourceStage } from '../../../src/streams/stage.js';

const MiB = 1024 * 1024;

/** A valid v1 stream of about `total` bytes (SUBVOL, ~48 KiB WRITEs, END) in fresh `chunk`-byte buffers. */
async function* syntheticStream(total: number, chunk: number): AsyncGenerator<Buffer> {
  const crc = await createSendCrc();
  const head = Buffer.concat([
    serializeStreamHeader(1),
    serializeCommand(
      Cmd.SUBVOL,
      [
        { type: Attr.PATH, value: Buffer.from('snap') },
        { type: Attr.UUID, value: uuidFromString('11111111-2222-3333-4444-555555555555') },
        { type: Attr.CTRANSID, value: writeU64(7) },
      ],
      1,
      crc,
    ),
  ]);
  const write = serializeCommand(
    Cmd.WRITE,
    [
      { type: Attr.PATH, value: Buffer.from('file') },
      { type: Attr.FILE_OFFSET, value: writeU64(0) },
      { type: Attr.DATA, value: Buffer.alloc(48 * 1024 - 7, 0x5a) },
    ],
    1,
    crc,
  );
  const end = serializeCommand(Cmd.END, [], 1, crc);
  const writes = Math.floor((total - head.length - end.length) / write.length);
  const bodyEnd = head.length + writes * write.length;
  const size = bodyEnd + end.length;
  for (let pos = 0; pos < size;) {
    const n = Math.min(chunk, size - pos);
    const out = Buffer.allocUnsafeSlow(n);
    for (let o = 0; o < n;) {
      const p = pos + o;
      const [src, at] =
        p < head.length
          ? [head, p]
          : p < bodyEnd
            ? [write, (p - head.length) % write.length]
            : [end, p - bodyEnd];
      o += src.copy(out, o, at, Math.min(src.length, at + n - o));
    }
    pos += n;
    yield out;
  }
}

describe('transfer transforms: memory', () => {
  it('stay bounded by their buffers on a long stream in large chunks', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const total = 320 * MiB;
    const samples: { at: number; live: number }[] = [];
    let seen = 0;
    const sink = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _enc, cb) {
        const before = seen;
        seen += chunk.length;
        // Sample at ¼ and ¾ of the stream: the live memory must not grow in between.
        for (const q of [0.25, 0.75]) {
          if (before < total * q && seen >= total * q) {
            gc();
            samples.push({ at: seen, live: process.memoryUsage().arrayBuffers });
          }
        }
        setImmediate(cb);
      },
    });
    const rewrite = uuidRewrite({ target: { uuid: '99999999-8888-7777-6666-555555555555' } });
    const verify = streamVerify();
    const rename = uuidRewrite({ subvolumeName: 'snap.part' });
    await runPipeline([
      sourceStage('synthetic', Readable.from(syntheticStream(total, 4 * MiB))),
      rewrite,
      verify,
      rename,
      sinkStage('discard', sink),
    ]);
    assert.equal(samples.length, 2);
    const growth = samples[1]!.live - samples[0]!.live;
    // Half the stream (160 MiB) went by between the samples; before the fix all of it stayed alive.
    assert.ok(
      growth < 24 * MiB,
      `live ArrayBuffers grew by ${(growth / MiB).toFixed(1)} MiB over 160 MiB of stream`,
    );
    const v = await verify.result;
    assert.equal(v.bytes, seen - 'snap.part'.length + 'snap'.length);
    assert.equal((await rename.result).rewritten, 1);
    assert.equal((await rewrite.result).rewritten, 1);
  });
});
