/**
 * The --no-data size probe against real btrfs: a diff with ≥ 40 MB of changed
 * data spread over many files, estimated from `btrfs send --no-data` and
 * compared with the byte count of the real `btrfs send -p`, for protocols 1
 * and 2. Also checks that the real streams verify and that the probe is much
 * cheaper than the real send.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { countBytes, noDataSizeProbe } from '../../src/stages/size-probe.js';
import { streamVerify } from '../../src/stages/stream-verify.js';
import type { SinkStage } from '../../src/streams/stage.js';
import { createBtrfs, deterministicBytes } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const MiB = 1024 * 1024;

/** Runs `btrfs send args` into `sink`; returns the sink's result and the time taken. */
async function send<R>(args: string[], sink: SinkStage<R>): Promise<{ value: R; ms: number }> {
  const t0 = performance.now();
  const child = execa('btrfs', ['send', '-q', ...args], {
    buffer: false,
    stdout: 'pipe',
    stderr: 'pipe',
  });
  await Promise.all([pipeline(child.stdout, sink.stream), child]);
  return { value: await sink.result, ms: performance.now() - t0 };
}

describe('noDataSizeProbe on real btrfs', integrationPrereqs({ root: true, btrfs: true }), () => {
  let fs: BtrfsFs;
  let s1: string;
  let s2: string;
  let changed = 0;

  before(async () => {
    fs = await createBtrfs({ size: 1024 * MiB });
    const vol = join(fs.mnt, 'vol');
    await execa('btrfs', ['subvolume', 'create', vol]);
    await mkdir(join(vol, 'big'));
    await mkdir(join(vol, 'small'));
    for (let i = 0; i < 60; i++)
      await writeFile(join(vol, 'big', `f${i}`), deterministicBytes(MiB, `big${i}`));
    for (let i = 0; i < 200; i++) {
      await writeFile(
        join(vol, 'small', `s${i}.txt`),
        deterministicBytes(1000 + i * 97, `small${i}`),
      );
    }
    await execa('sync');
    s1 = join(fs.mnt, 's1');
    await execa('btrfs', ['subvolume', 'snapshot', '-r', vol, s1]);

    // The change: overwrite 512 KiB in 40 files, append 256 KiB to 20, add 30
    // files of 600 KiB, edit 100 small files, delete and rename a few.
    for (let i = 0; i < 40; i++) {
      const fh = await open(join(vol, 'big', `f${i}`), 'r+');
      await fh.write(deterministicBytes(512 * 1024, `over${i}`), 0, 512 * 1024, 256 * 1024);
      await fh.close();
      changed += 512 * 1024;
    }
    for (let i = 40; i < 60; i++) {
      await appendFile(join(vol, 'big', `f${i}`), deterministicBytes(256 * 1024, `app${i}`));
      changed += 256 * 1024;
    }
    await mkdir(join(vol, 'new'));
    for (let i = 0; i < 30; i++) {
      await writeFile(join(vol, 'new', `n${i}`), deterministicBytes(600 * 1024, `new${i}`));
      changed += 600 * 1024;
    }
    for (let i = 0; i < 100; i++) {
      await appendFile(join(vol, 'small', `s${i}.txt`), `edit ${i}\n`);
      changed += 1000 + i * 97;
    }
    for (let i = 100; i < 110; i++) await rm(join(vol, 'small', `s${i}.txt`));
    for (let i = 110; i < 120; i++)
      await rename(join(vol, 'small', `s${i}.txt`), join(vol, `moved${i}.txt`));
    await execa('sync');
    s2 = join(fs.mnt, 's2');
    await execa('btrfs', ['subvolume', 'snapshot', '-r', vol, s2]);
  });

  after(async () => {
    await fs?.cleanup();
  });

  for (const proto of ['1', '2']) {
    it(`protocol ${proto}: the estimate is within 2 % of the real incremental stream`, async (t) => {
      assert.ok(changed >= 40 * MiB, `test changes ${changed} bytes`);
      const probe = await send(['--proto', proto, '--no-data', '-p', s1, s2], noDataSizeProbe());
      const real = await send(['--proto', proto, '-p', s1, s2], countBytes());
      const est = probe.value;
      const error = (est.bytes - real.value) / real.value;
      t.diagnostic(
        `proto ${proto}: estimate ${est.bytes} B from a ${est.probeBytes} B --no-data stream ` +
          `(${probe.ms.toFixed(0)} ms), real ${real.value} B (${real.ms.toFixed(0)} ms), ` +
          `error ${(error * 100).toFixed(3)} %`,
      );
      assert.equal(est.version, Number(proto));
      assert.ok(est.dataBytes >= 40 * MiB, `UPDATE_EXTENT total ${est.dataBytes}`);
      assert.ok(Math.abs(error) <= 0.02, `estimate off by ${(error * 100).toFixed(3)} %`);
      assert.ok(est.probeBytes * 100 < real.value, 'the probe stream is tiny next to the real one');
    });
  }

  it('the real streams verify end to end', async () => {
    for (const proto of ['1', '2']) {
      const verify = streamVerify();
      const counter = countBytes();
      const child = execa('btrfs', ['send', '-q', '--proto', proto, '-p', s1, s2], {
        buffer: false,
      });
      await Promise.all([pipeline(child.stdout, verify.stream, counter.stream), child]);
      const r = await verify.result;
      assert.equal(r.bytes, await counter.result);
      assert.equal(r.version, Number(proto));
      assert.ok(r.bytes > 40 * MiB, `the whole diff went through: ${r.bytes} B`);
      assert.ok(r.commands > 2, `more than a header and END: ${r.commands} commands`);
    }
  });
});
