import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { AbortedError, CommandError, UsageError } from '../../../src/errors.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { byteCounter } from '../../../src/streams/byte-counter.js';
import { hashTap } from '../../../src/streams/hash-tap.js';
import {
  handled,
  sinkStage,
  sourceStage,
  transformStage,
  type Stage,
} from '../../../src/streams/stage.js';
import { eventLoopTurns, waitFor } from '../../fixtures/wait-for.js';
import { collectSink, countingSource, endlessSource, trackUnhandled } from './helpers.js';

/** Records when each stage's result settles; `check()` asserts all have. */
function watch(stages: readonly Stage<unknown>[]) {
  const done = stages.map((s) => {
    const flag = { settled: false };
    s.result.then(
      () => (flag.settled = true),
      () => (flag.settled = true),
    );
    return flag;
  });
  return {
    check() {
      done.forEach((f, i) => assert.ok(f.settled, `${stages[i]?.name} result settled`));
    },
  };
}

function failingTransform(afterChunks: number, err: Error) {
  let n = 0;
  const t = new Transform({
    transform(chunk, _e, cb) {
      if (++n > afterChunks) cb(err);
      else cb(null, chunk);
    },
  });
  return transformStage('failing', t);
}

describe('runPipeline', () => {
  it('runs source → taps → sink and returns typed results and bytes', async () => {
    const track = trackUnhandled();
    const counter = byteCounter();
    const hash = hashTap({ algorithm: 'sha256' });
    const sink = collectSink();
    const out = await runPipeline([countingSource(10, 1000), counter, hash, sink]);
    const [, count, digest, data] = out.results;
    const n: number = count;
    const s: string = digest;
    const b: Buffer = data;
    assert.equal(n, 10_000);
    assert.equal(out.bytes, 10_000);
    assert.equal(b.length, 10_000);
    assert.equal(s, createHash('sha256').update(b).digest('hex'));
    assert.ok(out.elapsedMs >= 0);
    assert.deepEqual(await track.stop(), []);
  });

  it('has no bytes without a counter', async () => {
    const out = await runPipeline([countingSource(1, 10), collectSink()]);
    assert.equal(out.bytes, undefined);
  });

  it('rejects a wrong stage order at compile time and at run time', async () => {
    const src = countingSource(1, 1);
    const sink = collectSink();
    const t = byteCounter();
    // @ts-expect-error the last stage must be a sink
    await assert.rejects(runPipeline([src, t]), UsageError);
    // @ts-expect-error the first stage must be a source
    await assert.rejects(runPipeline([t, sink]), UsageError);
    // @ts-expect-error a pipeline needs a source and a sink
    await assert.rejects(runPipeline([src]), UsageError);
  });

  it('propagates an error in the source and tears everything down', async () => {
    const track = trackUnhandled();
    const boom = new Error('source failed');
    let i = 0;
    const src = sourceStage(
      'src',
      new Readable({
        read() {
          if (i++ < 3) this.push(Buffer.alloc(100));
          else this.destroy(boom);
        },
      }),
    );
    const stages = [src, byteCounter(), hashTap({ algorithm: 'md5' }), collectSink()] as const;
    const settled = watch(stages);
    await assert.rejects(runPipeline(stages), (e: unknown) => e === boom);
    for (const s of stages) assert.ok(s.stream.destroyed, `${s.name} destroyed`);
    settled.check();
    assert.deepEqual(await track.stop(), []);
  });

  it('propagates an error in a middle stage', async () => {
    const track = trackUnhandled();
    const boom = new Error('transform failed');
    const stages = [
      countingSource(100, 100),
      byteCounter(),
      failingTransform(5, boom),
      collectSink(),
    ] as const;
    const settled = watch(stages);
    await assert.rejects(runPipeline(stages), (e: unknown) => e === boom);
    for (const s of stages) assert.ok(s.stream.destroyed, `${s.name} destroyed`);
    settled.check();
    assert.deepEqual(await track.stop(), []);
  });

  it('propagates an error in the sink', async () => {
    const track = trackUnhandled();
    const boom = new Error('sink failed');
    let n = 0;
    const sink = sinkStage(
      'sink',
      new Writable({
        write(_c, _e, cb) {
          cb(++n > 2 ? boom : null);
        },
      }),
    );
    const stages = [endlessSource(), byteCounter(), sink] as const;
    const settled = watch(stages);
    await assert.rejects(runPipeline(stages), (e: unknown) => e === boom);
    for (const s of stages) assert.ok(s.stream.destroyed);
    settled.check();
    assert.deepEqual(await track.stop(), []);
  });

  it('reports the root cause, not secondary errors raised by teardown', async () => {
    const track = trackUnhandled();
    const boom = new Error('root cause');
    // A sink whose result rejects with its own, later, cleanup error when torn down.
    const w = new Writable({ write: (_c, _e, cb) => setImmediate(cb) });
    const sinkResult = new Promise<void>((_resolve, reject) => {
      w.on(
        'close',
        () => void eventLoopTurns(2).then(() => reject(new Error('cleanup after teardown'))),
      );
    });
    const sink = sinkStage('sink', w, sinkResult);
    const stages = [endlessSource(), failingTransform(10, boom), sink] as const;
    const settled = watch(stages);
    await assert.rejects(runPipeline(stages), (e: unknown) => e === boom);
    settled.check();
    assert.deepEqual(await track.stop(), []);
  });

  it('prefers a stage result rejection over the premature close it caused', async () => {
    const track = trackUnhandled();
    // Like a child process: it dies (result rejects), then its stdout just closes.
    const r = new Readable({ read() {} });
    const died = new CommandError('btrfs send failed', { command: 'btrfs send', exitCode: 1 });
    let rejectResult!: (e: unknown) => void;
    const result = new Promise<void>((_res, rej) => (rejectResult = rej));
    const src = sourceStage('child', r, result);
    r.push(Buffer.alloc(10));
    // Once the pipeline runs: the child dies, then its stdout closes.
    setImmediate(() => {
      rejectResult(died);
      r.destroy();
    });
    await assert.rejects(
      runPipeline([src, byteCounter(), collectSink()]),
      (e: unknown) => e === died,
    );
    assert.deepEqual(await track.stop(), []);
  });

  it('rejects with a result that fails after its stream finished, after it settled', async () => {
    const track = trackUnhandled();
    const late = new Error('commit failed');
    const w = new Writable({ write: (_c, _e, cb) => cb() });
    const result = new Promise<void>((_res, rej) =>
      w.on('finish', () => void eventLoopTurns(2).then(() => rej(late))),
    );
    const sink = sinkStage('sink', w, result);
    await assert.rejects(runPipeline([countingSource(3, 10), sink]), (e: unknown) => e === late);
    assert.deepEqual(await track.stop(), []);
  });

  it('resolves only after every stage result settled', async () => {
    const order: string[] = [];
    const t = new PassThrough();
    const slowResult = handled(
      new Promise<number>((res) =>
        t.on('finish', () =>
          eventLoopTurns(5).then(() => {
            order.push('result');
            res(42);
          }),
        ),
      ),
    );
    const out = await runPipeline([
      countingSource(3, 10),
      transformStage('slow', t, slowResult),
      collectSink(),
    ]);
    order.push('pipeline');
    assert.deepEqual(order, ['result', 'pipeline']);
    assert.equal(out.results[1], 42);
  });

  it('throws AbortedError with the reason when aborted before the start', async () => {
    const track = trackUnhandled();
    const ac = new AbortController();
    const reason = new Error('user pressed ^C');
    ac.abort(reason);
    const stages = [endlessSource(), byteCounter(), collectSink()] as const;
    const settled = watch(stages);
    await assert.rejects(runPipeline(stages, { signal: ac.signal }), (e: unknown) => {
      assert.ok(e instanceof AbortedError);
      assert.equal(e.cause, reason);
      return true;
    });
    for (const s of stages) assert.ok(s.stream.destroyed);
    settled.check();
    assert.deepEqual(await track.stop(), []);
  });

  it('throws AbortedError with the reason when aborted mid-flight', async () => {
    const track = trackUnhandled();
    const ac = new AbortController();
    const counter = byteCounter({ signal: ac.signal });
    const stages = [endlessSource(), counter, collectSink()] as const;
    const settled = watch(stages);
    const run = runPipeline(stages, { signal: ac.signal });
    await waitFor(() => counter.bytes > 0, { what: 'bytes to flow before the abort' });
    ac.abort('SIGTERM');
    await assert.rejects(run, (e: unknown) => {
      assert.ok(e instanceof AbortedError);
      assert.equal(e.cause, 'SIGTERM');
      return true;
    });
    for (const s of stages) assert.ok(s.stream.destroyed);
    settled.check();
    assert.deepEqual(await track.stop(), []);
  });

  it('reports a failure that came before a later abort', async () => {
    const ac = new AbortController();
    const boom = new Error('first');
    const run = runPipeline([endlessSource(), failingTransform(2, boom), collectSink()], {
      signal: ac.signal,
    });
    await assert.rejects(run, (e: unknown) => e === boom);
    ac.abort();
  });
});
