import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { AbortedError } from '../../../src/errors.js';
import { CHANNEL_CHECK_MS, watchChannel } from '../../../src/server/server-main.js';

/** A stderr whose reader is gone once `gone` is set: writes then fail with EPIPE. */
function stderr() {
  const state = { gone: false, writes: 0 };
  const stream = new Writable({
    write(_chunk, _enc, cb) {
      state.writes += 1;
      if (state.gone) cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      else cb();
    },
  });
  return { stream, state };
}

describe('watchChannel (server): noticing the SSH channel closed while nothing moves', () => {
  it(
    'probes stderr while stdin and stdout are quiet and reports the channel gone on EPIPE',
    { timeout: 5 * CHANNEL_CHECK_MS },
    async () => {
      const stdin = Object.assign(new PassThrough(), { bytesRead: 0 });
      const stdout = Object.assign(new PassThrough(), { bytesWritten: 0 });
      const err = stderr();
      const started = performance.now();
      // The probe's timer does not keep a process alive: this test's wait does.
      const alive = setTimeout(() => undefined, 5 * CHANNEL_CHECK_MS);
      const closed = await new Promise<Error>((resolve) => {
        const stop = watchChannel(stdin, stdout, err.stream, (e) => {
          stop();
          resolve(e);
        });
        err.state.gone = true;
      });
      clearTimeout(alive);
      assert.ok(closed instanceof AbortedError);
      assert.match(closed.message, /channel closed \(write EPIPE\)/);
      assert.ok(performance.now() - started < 2 * CHANNEL_CHECK_MS + 500);
    },
  );

  it(
    'writes nothing while bytes move on stdin or stdout',
    { timeout: 5 * CHANNEL_CHECK_MS },
    async () => {
      const stdin = Object.assign(new PassThrough(), { bytesRead: 0 });
      const stdout = Object.assign(new PassThrough(), { bytesWritten: 0 });
      const err = stderr();
      const moving = setInterval(() => (stdin.bytesRead += 1), CHANNEL_CHECK_MS / 4);
      const stop = watchChannel(stdin, stdout, err.stream, () => assert.fail('not closed'));
      await new Promise((r) => setTimeout(r, 2.5 * CHANNEL_CHECK_MS));
      clearInterval(moving);
      stop();
      assert.equal(err.state.writes, 0);
    },
  );
});
