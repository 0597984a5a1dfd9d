import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileHash } from '../../../src/checksumdir/file-hash.js';
import type { FileHashFields } from '../../../src/checksumdir/file-hash.js';
import { UsageError } from '../../../src/errors.js';

const asFile = (size: number) => ({ isFile: () => true, size });

async function hashAll(entries: object[], opts: Parameters<typeof fileHash>[0] = {}) {
  const out: (FileHashFields & { name?: string })[] = [];
  const stage = fileHash(opts);
  await pipeline(
    Readable.from(entries),
    stage.stream,
    new Writable({
      objectMode: true,
      write(e, _enc, cb) {
        out.push(e);
        cb();
      },
    }),
  );
  return { out, totals: await stage.result };
}

test('hashes regular files in worker threads, passes other entries through', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'file-hash-'));
  try {
    const entries = [];
    let bytes = 0;
    for (let i = 0; i < 300; i++) {
      const data = Buffer.alloc(i * 997 + (i === 7 ? 3 << 20 : 0), i);
      bytes += data.length;
      writeFileSync(join(dir, `f${i}`), data);
      entries.push({
        name: `f${i}`,
        absPath: join(dir, `f${i}`),
        stats: asFile(data.length),
        want: createHash('sha256').update(data).digest('hex'),
      });
    }
    entries.push({ name: 'dir', absPath: dir, stats: { isFile: () => false, size: 0 } });
    let progress = 0;
    const { out, totals } = await hashAll(entries, {
      concurrency: 2,
      chunkSize: 64 * 1024,
      onBytes: (n) => (progress += n),
    });
    assert.equal(out.length, entries.length);
    for (const e of out as (FileHashFields & { want?: string })[]) assert.equal(e.sha256, e.want);
    assert.deepEqual(totals, { files: 300, bytes, failed: 0 });
    assert.equal(progress, bytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vanished, swapped-for-symlink and not-a-file entries carry hashError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'file-hash-'));
  try {
    writeFileSync(join(dir, 'real'), 'x');
    symlinkSync('real', join(dir, 'link'));
    mkdirSync(join(dir, 'nowdir'));
    const { out, totals } = await hashAll([
      { absPath: join(dir, 'gone'), stats: asFile(1) },
      { absPath: join(dir, 'link'), stats: asFile(1) },
      { absPath: join(dir, 'nowdir'), stats: asFile(1) },
    ]);
    assert.deepEqual(out.map((e) => e.hashError?.code).sort(), ['EISDIR', 'ELOOP', 'ENOENT']);
    assert.deepEqual(totals, { files: 0, bytes: 0, failed: 3 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('options are validated; an aborted signal destroys the stream', async () => {
  assert.throws(() => fileHash({ concurrency: 0 }), UsageError);
  assert.throws(() => fileHash({ chunkSize: 10 }), UsageError);
  const stage = fileHash({ signal: AbortSignal.abort() });
  await assert.rejects(stage.result, { code: 'ABORTED' });
});
