import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { AbortedError } from '../../../src/errors.js';
import { commitSink } from '../../../src/streams/commit-sink.js';
import { sinkStage, type SinkStage } from '../../../src/streams/stage.js';

/** A promise with its resolve/reject handles. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * An inner sink that keeps what it is written. Each write's callback waits
 * until `release()` when `hold` is set; `result` resolves to the bytes once
 * the stream finished, unless `result` is given (then it is that promise).
 * `slowDestroy` delays its `close` until `closeNow()`.
 */
function innerSink(
  opts: { hwm?: number; hold?: boolean; result?: Promise<string>; slowDestroy?: boolean } = {},
) {
  const chunks: Buffer[] = [];
  const pending: (() => void)[] = [];
  let closeNow = () => {};
  const stream = new Writable({
    highWaterMark: opts.hwm ?? 16,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      if (opts.hold) pending.push(() => cb());
      else cb();
    },
    destroy(err, cb) {
      if (opts.slowDestroy) closeNow = () => cb(err);
      else cb(err);
    },
  });
  const finished = new Promise<string>((resolve, reject) => {
    stream.on('finish', () => resolve(Buffer.concat(chunks).toString()));
    stream.on('close', () => reject(new Error('inner closed before finish')));
  });
  finished.catch(() => {});
  const stage: SinkStage<string> = sinkStage('inner', stream, opts.result ?? finished);
  return {
    stage,
    stream,
    chunks,
    /** Completes every held write. */
    release: () => pending.splice(0).forEach((f) => f()),
    pendingWrites: () => pending.length,
    closeNow: () => closeNow(),
  };
}

/** Resolves once `stream` has closed (at once when it already has). */
async function closed(stream: Writable): Promise<void> {
  if (!stream.closed) await new Promise((resolve) => stream.once('close', resolve));
}

/** Writes `data` and ends the wrapper, ignoring write errors (the result reports them). */
function feed(stream: Writable, data: string[]): void {
  stream.on('error', () => {});
  for (const d of data) stream.write(Buffer.from(d));
  stream.end();
}

describe('commitSink', () => {
  it('forwards every byte, commits after the inner sink finished, and resolves with the commit value', async () => {
    const inner = innerSink();
    const seen: string[] = [];
    const sink = commitSink(inner.stage, {
      commit: async (r) => {
        seen.push(r);
        assert.ok(inner.stream.writableFinished, 'inner finished before commit');
        return { committed: r.length };
      },
    });
    assert.equal(sink.kind, 'sink');
    assert.equal(sink.name, 'inner');
    feed(sink.stream, ['ab', 'cd', 'e']);
    assert.deepEqual(await sink.result, { committed: 5 });
    assert.deepEqual(seen, ['abcde']);
  });

  it('takes its name from the options when given, and the inner high-water mark', () => {
    const inner = innerSink({ hwm: 7 });
    const sink = commitSink(inner.stage, { name: 'btrfs-receive', commit: async () => 1 });
    assert.equal(sink.name, 'btrfs-receive');
    assert.equal(sink.stream.writableHighWaterMark, 7);
    sink.stream.destroy();
  });

  it('holds a write until the inner sink drains, then finishes normally', async () => {
    const inner = innerSink({ hwm: 1, hold: true });
    const sink = commitSink(inner.stage, { commit: async (r) => r });
    sink.stream.on('error', () => {});
    let written = false;
    sink.stream.write(Buffer.from('xyz'), () => (written = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(inner.pendingWrites(), 1);
    assert.equal(written, false, 'write completed before the inner sink drained');
    inner.release();
    await new Promise((r) => setImmediate(r));
    assert.equal(written, true);
    sink.stream.end(Buffer.from('!'));
    while (!inner.stream.writableFinished) {
      inner.release();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await sink.result, 'xyz!');
    // After a drain the wrapper no longer listens for the inner close: its
    // closing later must not complete the same write a second time (an error).
    await closed(inner.stream);
    await closed(sink.stream);
    assert.equal(sink.stream.errored, null);
  });

  it('fails a held write when the inner sink closes without an error, and never commits', async () => {
    const inner = innerSink({ hwm: 1, hold: true });
    let commits = 0;
    const sink = commitSink(inner.stage, { commit: async () => commits++ });
    sink.stream.on('error', () => {});
    let writeError: unknown = 'pending';
    sink.stream.write(Buffer.from('xyz'), (err) => (writeError = err));
    await new Promise((r) => setImmediate(r));
    inner.stream.destroy();
    await closed(sink.stream);
    assert.ok(writeError instanceof Error, `write callback got ${String(writeError)}`);
    assert.match(writeError.message, /receiver closed before the stream ended/);
    await assert.rejects(sink.result);
    assert.equal(commits, 0);
  });

  it('fails with the inner error when the inner sink errors, and never commits', async () => {
    const inner = innerSink({ hwm: 1, hold: true });
    let commits = 0;
    const sink = commitSink(inner.stage, { commit: async () => commits++ });
    sink.stream.on('error', () => {});
    sink.stream.write(Buffer.from('xyz'));
    await new Promise((r) => setImmediate(r));
    const boom = new Error('receiver died');
    inner.stream.destroy(boom);
    await assert.rejects(sink.result, (e) => e === boom);
    assert.equal(sink.stream.destroyed, true);
    assert.equal(commits, 0);
  });

  it('an inner error while no write is pending destroys the wrapper with it at once', async () => {
    const inner = innerSink();
    let commits = 0;
    const sink = commitSink(inner.stage, { commit: async () => commits++ });
    sink.stream.on('error', () => {});
    sink.stream.write(Buffer.from('ab'));
    await new Promise((r) => setImmediate(r));
    const boom = new Error('receiver died while idle');
    inner.stream.destroy(boom);
    await closed(sink.stream);
    assert.equal(sink.stream.errored, boom);
    await assert.rejects(sink.result, (e) => e === boom);
    assert.equal(commits, 0);
  });

  it('rejects with the inner result error and never commits', async () => {
    const bad = deferred<string>();
    const inner = innerSink({ result: bad.promise });
    let commits = 0;
    const sink = commitSink(inner.stage, { commit: async () => commits++ });
    feed(sink.stream, ['ab']);
    await once(inner.stream, 'finish');
    const err = new Error('receive exited 1');
    bad.reject(err);
    await assert.rejects(sink.result, (e) => e === err);
    await closed(sink.stream);
    assert.equal(sink.stream.errored, err);
    assert.equal(commits, 0);
  });

  it('a throwing commit fails the stage with its error', async () => {
    const inner = innerSink();
    const err = new Error('UUID mismatch');
    const sink = commitSink(inner.stage, {
      commit: async () => {
        throw err;
      },
    });
    feed(sink.stream, ['ab']);
    await assert.rejects(sink.result, (e) => e === err);
    await closed(sink.stream);
    assert.equal(sink.stream.errored, err);
  });

  it('does not commit when the signal aborts after the inner sink finished but before its result', async () => {
    const late = deferred<string>();
    const inner = innerSink({ result: late.promise });
    const ac = new AbortController();
    let commits = 0;
    const sink = commitSink(inner.stage, { signal: ac.signal, commit: async () => commits++ });
    feed(sink.stream, ['ab']);
    await once(inner.stream, 'finish');
    ac.abort();
    late.resolve('ok');
    // The project's error, not the DOMException of signal.throwIfAborted().
    await assert.rejects(sink.result, (e: unknown) => {
      assert.ok(e instanceof AbortedError, `rejected with ${String(e)}`);
      assert.equal(e.cause, ac.signal.reason);
      return true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(commits, 0);
  });

  it('an aborted signal destroys the wrapper and the inner sink; the result rejects with AbortedError', async () => {
    const inner = innerSink({ hwm: 1, hold: true });
    const ac = new AbortController();
    let commits = 0;
    const sink = commitSink(inner.stage, { signal: ac.signal, commit: async () => commits++ });
    sink.stream.on('error', () => {});
    sink.stream.write(Buffer.from('x'));
    ac.abort();
    await assert.rejects(sink.result, AbortedError);
    assert.equal(inner.stream.destroyed, true);
    assert.ok(inner.stream.errored instanceof AbortedError, 'inner destroyed with the cause');
    assert.equal(commits, 0);
  });

  it('destroying the wrapper without an error rejects with AbortedError once the inner result settles', async () => {
    const later = deferred<string>();
    const inner = innerSink({ result: later.promise });
    const sink = commitSink(inner.stage, { commit: async () => 1 });
    sink.stream.destroy();
    assert.equal(inner.stream.destroyed, true);
    later.resolve('whatever');
    await assert.rejects(sink.result, AbortedError);
  });

  it('destroying the wrapper without an error rejects with the inner result error when it failed', async () => {
    const later = deferred<string>();
    const inner = innerSink({ result: later.promise });
    const sink = commitSink(inner.stage, { commit: async () => 1 });
    sink.stream.destroy();
    const err = new Error('killed');
    later.reject(err);
    await assert.rejects(sink.result, (e) => e === err);
  });

  it('destroying the wrapper with an error rejects with that error, whatever the inner result', async () => {
    for (const settle of ['resolve', 'reject'] as const) {
      const later = deferred<string>();
      const inner = innerSink({ result: later.promise });
      const sink = commitSink(inner.stage, { commit: async () => 1 });
      sink.stream.on('error', () => {});
      const err = new Error(`stop ${settle}`);
      sink.stream.destroy(err);
      assert.equal(inner.stream.errored, err, 'inner destroyed with the same error');
      if (settle === 'resolve') later.resolve('x');
      else later.reject(new Error('inner'));
      await assert.rejects(sink.result, (e) => e === err, settle);
    }
  });

  it('closes only after the inner sink closed', async () => {
    const inner = innerSink({ slowDestroy: true });
    const sink = commitSink(inner.stage, { commit: async () => 1 });
    let outerClosed = false;
    sink.stream.on('close', () => (outerClosed = true));
    sink.stream.destroy();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(outerClosed, false, 'wrapper closed while the inner sink was still closing');
    inner.closeNow();
    await closed(sink.stream);
    assert.equal(inner.stream.closed, true);
  });

  it('destroyed after the inner sink already closed, it closes at once', async () => {
    const inner = innerSink();
    const sink = commitSink(inner.stage, { commit: async () => 1 });
    inner.stream.destroy();
    await closed(inner.stream);
    sink.stream.destroy();
    await closed(sink.stream);
  });
});
