/**
 * The rate limit stage on plain streams with a fake clock (no wall time): the
 * bytes handed on never run ahead of the rate, arrive unchanged, the run takes
 * the time the rate says, and a destroyed stream cancels its wait. parseRate
 * reads rates as rsync's --bwlimit does.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/errors.js';
import { parseRate, rateLimit } from '../../../src/stages/rate-limit.js';
import type { RateClock } from '../../../src/stages/rate-limit.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { sinkStage, sourceStage } from '../../../src/streams/stage.js';

/** A clock whose time moves only when the stage sleeps. */
function fakeClock(): RateClock & { t: number } {
  const clock = {
    t: 1000,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.t += ms;
    },
  };
  return clock;
}

describe('rateLimit', () => {
  it('never runs ahead of the rate, hands bytes on unchanged, and takes the time the rate says', async () => {
    const clock = fakeClock();
    const rate = 100 * 1024;
    const data = Buffer.alloc(1000 * 1024, 7).map((_, i) => i % 251);
    const chunks = Array.from({ length: 10 }, (_, i) =>
      data.subarray(i * 102400, (i + 1) * 102400),
    );
    const got: Buffer[] = [];
    let seen = 0;
    const start = clock.t;
    const sink = new Writable({
      write: (c: Buffer, _e, cb) => {
        seen += c.length;
        got.push(c);
        const allowed = (rate * (clock.t - start)) / 1000 + rate / 10;
        cb(seen <= allowed + 1 ? null : new Error(`${seen} bytes by ${clock.t - start} ms`));
      },
    });
    const { results } = await runPipeline([
      sourceStage('data', Readable.from(chunks)),
      rateLimit({ bytesPerSecond: rate, clock }),
      sinkStage('collect', sink),
    ] as const);
    assert.equal(results[1], data.length);
    assert.ok(Buffer.concat(got).equals(data), 'unchanged');
    assert.ok(Math.abs(clock.t - start - 10_000) < 1, `10 s of fake time, took ${clock.t - start}`);
  });

  it('a destroyed stream cancels its wait', async () => {
    let aborted: AbortSignal | undefined;
    const clock: RateClock = {
      now: () => 0,
      sleep: (_ms, signal) =>
        new Promise((_resolve, reject) => {
          aborted = signal;
          signal.addEventListener('abort', () => reject(new Error('cancelled')));
        }),
    };
    const stage = rateLimit({ bytesPerSecond: 10, clock });
    stage.stream.write(Buffer.alloc(5));
    stage.stream.resume();
    await new Promise((r) => setImmediate(r));
    assert.ok(aborted && !aborted.aborted, 'waiting');
    stage.stream.destroy();
    assert.equal(aborted.aborted, true);
    await assert.rejects(stage.result);
  });

  it('refuses a rate that is not positive', () => {
    assert.throws(() => rateLimit({ bytesPerSecond: 0 }), UsageError);
  });
});

describe('parseRate (rsync --bwlimit)', () => {
  it('reads KiB/s by default, suffixes K, M, G 1024-based, KB/MB/GB 1000-based, 0 as no limit', () => {
    assert.equal(parseRate('100'), 100 * 1024);
    assert.equal(parseRate('1.5M'), 1.5 * 1024 * 1024);
    assert.equal(parseRate('1.5m'), 1.5 * 1024 * 1024);
    assert.equal(parseRate('10G'), 10 * 1024 ** 3);
    assert.equal(parseRate('64KiB'), 64 * 1024);
    assert.equal(parseRate('2KB'), 2000);
    assert.equal(parseRate('3MB'), 3_000_000);
    assert.equal(parseRate('512B'), 512);
    assert.equal(parseRate('0'), undefined);
  });

  it('refuses anything else with a UsageError', () => {
    for (const bad of ['', 'fast', '-5', '1T', '5 M/s', '1e3']) {
      assert.throws(() => parseRate(bad), UsageError, bad);
    }
  });
});
