import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { FRAME_JSON, TimeoutError } from '../../../../src/wire/frame.js';
import { PROTOCOL_NAME, PROTOCOL_VERSIONS } from '../../../../src/wire/protocol.js';
import { RemoteSession } from '../../../../src/stores/ssh/remote-session.js';
import type { SshConnection } from '../../../../src/stores/ssh/ssh-connection.js';

/**
 * Stands in for an ssh2 exec channel: what the session writes is taken (or,
 * with `reading = false`, held as a stopped remote would hold it), and the
 * test pushes the remote's bytes.
 */
class FakeChannel extends Duplex {
  readonly stderr = new PassThrough();
  reading = true;
  #held: (() => void)[] = [];

  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (this.reading) cb();
    else this.#held.push(cb);
  }

  override _read(): void {}

  /** The remote sends one JSON frame, `split` bytes at a time every `everyMs` (default: at once). */
  async send(message: object, split = 0, everyMs = 0): Promise<void> {
    const payload = Buffer.from(JSON.stringify(message));
    const frame = Buffer.concat([Buffer.from([FRAME_JSON, 0, 0, 0, 0]), payload]);
    frame.writeUInt32BE(payload.length, 1);
    if (split <= 0) {
      this.push(frame);
      return;
    }
    for (let at = 0; at < frame.length; at += split) {
      this.push(frame.subarray(at, at + split));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  close(): void {
    this.emit('exit', 0);
    this.push(null);
    this.destroy();
  }
}

const hello = { type: 'hello', protocol: PROTOCOL_NAME, versions: PROTOCOL_VERSIONS };

async function open(idleMs: number, ch = new FakeChannel()) {
  const conn = { exec: async () => ch, dropReason: undefined } as unknown as SshConnection;
  setImmediate(() => void ch.send(hello));
  const session = await RemoteSession.open(conn, 'buttersink --server --mode r /x/', 'ssh://fake', {
    idleMs,
  });
  return { ch, session };
}

describe('RemoteSession idle limit', () => {
  it(
    'fails a request the remote never answers after the idle limit, in one line',
    { timeout: 5000 },
    async () => {
      const { session } = await open(200);
      const started = performance.now();
      await assert.rejects(session.request({ op: 'listPartials' }), (err: unknown) => {
        assert.ok(err instanceof TimeoutError, String(err));
        assert.equal(
          err.message,
          'the remote buttersink at ssh://fake sent nothing for 0.2 s (idle limit); closing the session',
        );
        return true;
      });
      assert.ok(performance.now() - started >= 190);
      await session.destroy();
    },
  );

  it(
    'counts bytes, not frames: an answer trickling in slower than the limit per frame is not idle',
    { timeout: 5000 },
    async () => {
      const { ch, session } = await open(300);
      const answer = session.request({ op: 'listPartials' });
      // About 40 bytes, 4 at a time every 100 ms: ~1 s for the frame, never 300 ms without a byte.
      await ch.send({ type: 'result', paths: ['abcdefghij'] }, 4, 100);
      assert.deepEqual((await answer).paths, ['abcdefghij']);
      await session.destroy();
    },
  );

  it(
    'does not count the silence while the remote owes nothing (a push before its end)',
    { timeout: 5000 },
    async () => {
      const { ch, session } = await open(200);
      session.answerDue = false;
      const result = session.expect('result');
      let settled = false;
      result.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(settled, false, 'still waiting after 2.5 idle limits');
      session.answerDue = true;
      const started = performance.now();
      await assert.rejects(result, TimeoutError);
      assert.ok(
        performance.now() - started >= 190,
        'the limit counts from when the answer became due',
      );
      void ch;
      await session.destroy();
    },
  );

  it('fails a write the remote does not read for the idle limit', { timeout: 5000 }, async () => {
    const { ch, session } = await open(200);
    ch.reading = false;
    await assert.rejects(session.writer.data(Buffer.alloc(1 << 20)), (err: unknown) => {
      assert.ok(err instanceof TimeoutError, String(err));
      assert.match(
        err.message,
        /^the remote buttersink at ssh:\/\/fake read nothing for 0\.2 s \(idle limit\)/,
      );
      return true;
    });
    const started = performance.now();
    await session.destroy();
    assert.ok(performance.now() - started < 1000, 'a stuck remote is not waited for');
  });

  it(
    'gives the remote command longer than the idle limit to start',
    { timeout: 5000 },
    async () => {
      const ch = new FakeChannel();
      const conn = { exec: async () => ch, dropReason: undefined } as unknown as SshConnection;
      setTimeout(() => void ch.send(hello), 500);
      const session = await RemoteSession.open(
        conn,
        'sudo buttersink --server --mode r /x/',
        'ssh://fake',
        {
          idleMs: 200,
        },
      );
      await session.destroy();
    },
  );

  it('with no limit (0), waits as long as it takes', { timeout: 5000 }, async () => {
    const { ch, session } = await open(0);
    const answer = session.request({ op: 'listPartials' });
    setTimeout(() => void ch.send({ type: 'result', paths: [] }), 400);
    assert.deepEqual((await answer).paths, []);
    await session.destroy();
  });
});
