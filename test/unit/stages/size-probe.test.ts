import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { AbortedError, StreamCorruptError, UsageError } from '../../../src/errors.js';
import { countBytes, noDataSizeProbe } from '../../../src/stages/size-probe.js';
import type { NoDataSizeProbeOptions } from '../../../src/stages/size-probe.js';
import { fixture, randomChunks, rng } from '../../fixtures/streams/index.js';

async function probe(chunks: Buffer[], opts: NoDataSizeProbeOptions = {}) {
  const stage = noDataSizeProbe(opts);
  await pipeline(Readable.from(chunks), stage.stream);
  return stage.result;
}

describe('countBytes', () => {
  it('counts every byte written, in any chunking', async () => {
    const bytes = fixture('full-v2');
    const stage = countBytes();
    await pipeline(Readable.from(randomChunks(bytes, rng(1), 3000)), stage.stream);
    assert.equal(await stage.result, bytes.length);
  });

  it('rejects when destroyed or aborted before the end', async () => {
    const stage = countBytes();
    stage.stream.destroy();
    await assert.rejects(stage.result);
    const ac = new AbortController();
    const s2 = countBytes({ signal: ac.signal });
    ac.abort();
    await assert.rejects(s2.result, AbortedError);
  });
});

describe('noDataSizeProbe', () => {
  for (const v of ['v1', 'v2']) {
    it(`${v}: estimates the recorded real incremental stream exactly from its --no-data twin`, async () => {
      const real = fixture(`incr-${v}`).length;
      const nodata = fixture(`incr-nodata-${v}`);
      const est = await probe(randomChunks(nodata, rng(2), 100));
      assert.equal(est.bytes, real);
      assert.equal(est.probeBytes, nodata.length);
      assert.equal(est.extents, 3);
      assert.equal(est.writes, 3);
      assert.equal(est.dataBytes, 4096 + 4096 + 7904);
      assert.equal(est.version, Number(v.slice(1)));
      assert.equal(est.bytes, est.metadataBytes + est.dataBytes + est.writeOverheadBytes);
    });
  }

  it('splits extents into WRITEs of the version’s size, or of writeSize', async () => {
    const nodata = fixture('incr-nodata-v1');
    const base = await probe([nodata]);
    const small = await probe([nodata], { writeSize: 1000 });
    // 4096 → 5 writes, 4096 → 5, 7904 → 8 instead of 1 each.
    assert.equal(small.writes, 18);
    // Per v1 WRITE: 10 header + 4 + |path| + 12 (FILE_OFFSET) + 4 (DATA header);
    // big.bin (7 bytes) once, dir/notes.txt (13 bytes) twice.
    assert.equal(base.writeOverheadBytes, 37 + 2 * 43);
    assert.equal(small.writeOverheadBytes, 5 * 37 + 13 * 43);
    assert.equal(small.bytes - base.bytes, small.writeOverheadBytes - base.writeOverheadBytes);
    const asV2 = await probe([nodata], { version: 2 });
    assert.equal(asV2.writeOverheadBytes, base.writeOverheadBytes - 3 * 2);
  });

  it('counts a stream without UPDATE_EXTENT as itself', async () => {
    const bytes = fixture('full-v1');
    const est = await probe([bytes]);
    assert.equal(est.bytes, bytes.length);
    assert.equal(est.dataBytes, 0);
  });

  it('rejects a corrupt or truncated probe stream', async () => {
    const nodata = Buffer.from(fixture('incr-nodata-v1'));
    await assert.rejects(probe([nodata.subarray(0, nodata.length - 3)]), StreamCorruptError);
    nodata[200]! ^= 1;
    await assert.rejects(probe([nodata]), StreamCorruptError);
  });

  it('validates options', () => {
    assert.throws(() => noDataSizeProbe({ version: 4 }), UsageError);
    assert.throws(() => noDataSizeProbe({ writeSize: 0 }), UsageError);
  });
});
