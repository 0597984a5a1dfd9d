import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createCRC32 } from 'hash-wasm';
import type { UploadFrame } from '../../../src/stages/s3-upload.js';
import { etagIsMd5, partMatches, skipUploaded } from '../../../src/stages/skip-uploaded.js';
import type { RecordedPart } from '../../../src/stages/skip-uploaded.js';
import { chunker } from '../../../src/streams/chunker.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { sinkStage, sourceStage } from '../../../src/streams/stage.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest();

describe('skip-uploaded', () => {
  it('matches by size and ETag (MD5), or by the recorded additional checksum', async () => {
    const crc = { crc32: await createCRC32(), crc32c: await createCRC32(0x82f63b78) };
    const data = Buffer.from('hello parts');
    const m = md5(data);
    const etag = `"${m.toString('hex')}"`;
    assert.equal(partMatches(data, m, { etag, size: data.length }, crc), true);
    assert.equal(partMatches(data, m, { etag, size: data.length + 1 }, crc), false);
    assert.equal(
      partMatches(data, m, { etag: '"00000000000000000000000000000000"', size: data.length }, crc),
      false,
    );
    assert.equal(
      partMatches(data, m, { etag: '"abc-2"', size: data.length }, crc),
      false,
      'not an MD5: upload again',
    );
    const sha = createHash('sha256').update(data).digest('base64');
    assert.equal(
      partMatches(data, m, { etag: '"kms"', size: data.length, checksums: { SHA256: sha } }, crc),
      true,
    );
    assert.equal(
      partMatches(data, m, { etag, size: data.length, checksums: { SHA256: 'AAAA' } }, crc),
      false,
      'the additional checksum decides when present',
    );
    assert.equal(etagIsMd5(etag), true);
    assert.equal(etagIsMd5('"d41d8cd98f00b204e9800998ecf8427e-3"'), false);
  });

  it('marks exactly the parts whose content matches, passes every part on in order', async () => {
    const data = Buffer.alloc(10_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const size = 1000;
    const part = (n: number) => data.subarray((n - 1) * size, n * size);
    const uploaded = new Map<number, RecordedPart>([
      [1, { etag: `"${md5(part(1)).toString('hex')}"`, size }],
      [2, { etag: `"${md5(Buffer.from('other')).toString('hex')}"`, size }],
      [3, { etag: `"${md5(part(3)).toString('hex')}"`, size }],
    ]);
    const frames: UploadFrame[] = [];
    const sink = new Writable({
      objectMode: true,
      write(f: UploadFrame, _e, cb) {
        frames.push(f);
        cb();
      },
    });
    const skip = skipUploaded({ uploaded });
    const { results } = await runPipeline([
      sourceStage('src', Readable.from([data.subarray(0, 3333), data.subarray(3333)])),
      chunker({ partSize: size }),
      skip,
      sinkStage('collect', sink),
    ] as const);
    assert.deepEqual(
      frames.map((f) => [f.partNumber, f.uploadedETag !== undefined]),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => [n, n === 1 || n === 3]),
    );
    assert.ok(frames.every((f) => f.md5?.equals(md5(f.data))));
    assert.deepEqual(results[2], {
      parts: 10,
      skippedParts: 2,
      skippedBytes: 2000,
      mismatchedParts: 1,
    });
  });
});
