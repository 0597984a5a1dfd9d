import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FrameReader, FrameWriter } from '../../../src/wire/frame.js';
import type { Frame } from '../../../src/wire/frame.js';
import { frameSink } from '../../../src/wire/frame-stages.js';
import { SESSION_EXIT, serveSession } from '../../../src/server/serve-session.js';
import type { ServeSessionOptions } from '../../../src/server/serve-session.js';
import { parseServerArgs } from '../../../src/server/server-main.js';

type Message = Record<string, unknown>;

/** A session served in-process over two pipes, with a client end to drive it. */
function open(root: string, extra: Partial<ServeSessionOptions>, output = new PassThrough()) {
  const toServer = new PassThrough();
  const exit = serveSession({ input: toServer, output, mode: 'w', root, ...extra });
  const reader = new FrameReader(output, { maxJson: 1 << 20, peer: 'server' });
  const writer = new FrameWriter(toServer, { peer: 'server' });
  const next = async (): Promise<Message | null> => {
    const f: Frame | null = await reader.next();
    if (f === null) return null;
    assert.equal(f.kind, 'json');
    return f.kind === 'json' ? (f.message as Message) : null;
  };
  return { toServer, output, exit, writer, next };
}

const bad = { type: 'request', op: 'nope' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('session time limits', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bs-limits-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it(
    'ends a session whose client sends nothing between requests with one TIMEOUT error',
    { timeout: 5000 },
    async () => {
      const s = open(root, { idleSeconds: 0.2 });
      assert.equal((await s.next())?.type, 'hello');
      await s.writer.json({ type: 'hello', version: 1 });
      const started = performance.now();
      const m = await s.next();
      assert.ok(performance.now() - started >= 190, 'not before the idle limit');
      assert.equal(m?.type, 'error');
      assert.equal(m?.code, 'TIMEOUT');
      assert.equal(
        m?.message,
        'no data from the client for 0.2 s (idle limit); closing the session',
      );
      assert.equal(await s.next(), null, 'the error is the last frame');
      assert.equal(await s.exit, SESSION_EXIT.failed);
    },
  );

  it('restarts the idle limit with every frame from the client', { timeout: 5000 }, async () => {
    const s = open(root, { idleSeconds: 0.25 });
    await s.next();
    await s.writer.json({ type: 'hello', version: 1 });
    for (let i = 0; i < 6; i++) {
      await sleep(120);
      await s.writer.json(bad);
      assert.equal((await s.next())?.code, 'BAD_REQUEST', `answer ${i}`);
    }
    s.toServer.end();
    assert.equal(await s.exit, SESSION_EXIT.ok);
  });

  it(
    'ends a session whose client reads nothing while the server writes with one TIMEOUT error',
    { timeout: 5000 },
    async () => {
      // Nobody reads `output` until the session is over: its buffer fills and the server waits for drain.
      const output = new PassThrough({ highWaterMark: 256 });
      const s = open(root, { idleSeconds: 0.2 }, output);
      const client = new FrameWriter(s.toServer, { peer: 'server' });
      await client.json({ type: 'hello', version: 1 });
      for (let i = 0; i < 20; i++) await client.json(bad);
      assert.equal(await s.exit, SESSION_EXIT.failed);
      const messages: Message[] = [];
      for (let m = await s.next(); m !== null; m = await s.next()) messages.push(m);
      const errors = messages.filter((m) => m.code === 'TIMEOUT');
      assert.equal(errors.length, 1);
      assert.equal(messages.at(-1), errors[0], 'the TIMEOUT error is the last frame');
      assert.equal(
        errors[0]!.message,
        'the client read nothing for 0.2 s (idle limit); closing the session',
      );
    },
  );

  it(
    'aborts a session that reaches its overall time limit, however busy the client',
    { timeout: 5000 },
    async () => {
      const s = open(root, { maxSeconds: 0.3, idleSeconds: 60 });
      await s.next();
      await s.writer.json({ type: 'hello', version: 1 });
      const started = performance.now();
      let m: Message | null = null;
      while (performance.now() - started < 3000) {
        await s.writer.json(bad).catch(() => undefined);
        m = await s.next();
        if (m?.code !== 'BAD_REQUEST') break;
        await sleep(50);
      }
      assert.equal(m?.code, 'TIMEOUT', `got ${JSON.stringify(m)}`);
      assert.equal(
        m?.message,
        'session time limit of 0.3 s reached (max-seconds); closing the session',
      );
      assert.ok(performance.now() - started >= 250, 'not before the limit');
      assert.equal(await s.next(), null, 'the error is the last frame');
      assert.equal(await s.exit, SESSION_EXIT.failed);
    },
  );

  it(
    'ends a session waiting for a silent client at the overall limit',
    { timeout: 5000 },
    async () => {
      const s = open(root, { maxSeconds: 0.3, idleSeconds: 60 });
      await s.next();
      await s.writer.json({ type: 'hello', version: 1 });
      const m = await s.next();
      assert.equal(m?.code, 'TIMEOUT');
      assert.match(String(m?.message), /^session time limit of 0.3 s reached/);
      assert.equal(await s.next(), null, 'the error is the last frame');
      assert.equal(await s.exit, SESSION_EXIT.failed);
    },
  );

  it('counts a frame trickling in byte by byte as activity', { timeout: 5000 }, async () => {
    const s = open(root, { idleSeconds: 0.25 });
    await s.next();
    await s.writer.json({ type: 'hello', version: 1 });
    const wire = new PassThrough();
    await new FrameWriter(wire, { peer: 'server' }).json(bad);
    const bytes = wire.read() as Buffer;
    for (const b of bytes.subarray(0, 12)) {
      s.toServer.write(Buffer.from([b]));
      await sleep(50);
    }
    s.toServer.write(bytes.subarray(12));
    assert.equal((await s.next())?.code, 'BAD_REQUEST');
    s.toServer.end();
    assert.equal(await s.exit, SESSION_EXIT.ok);
  });

  it(
    "fails the send stream's frame sink when the client stops reading",
    { timeout: 5000 },
    async () => {
      const wire = new PassThrough({ highWaterMark: 1024 });
      const idle: Error[] = [];
      const sink = frameSink({
        name: 'ssh-write',
        writer: new FrameWriter(wire, { peer: 'client', idleMs: 200, onIdle: (e) => idle.push(e) }),
        finish: async () => 0,
        abort: async () => undefined,
      });
      sink.stream.on('error', () => undefined);
      sink.stream.end(Buffer.alloc(1 << 20));
      await assert.rejects(sink.result, { code: 'TIMEOUT', message: /read nothing for 0.2 s/ });
      assert.equal(idle.length, 1);
    },
  );

  it('does not count a slow but steady reader as idle', { timeout: 5000 }, async () => {
    const wire = new PassThrough({ highWaterMark: 1024 });
    const writer = new FrameWriter(wire, { peer: 'client', idleMs: 250 });
    const reading = setInterval(() => wire.read(16 * 1024), 100);
    try {
      // About 1 s of writing at 160 KiB/s, each wait for drain longer than the idle limit.
      for (let i = 0; i < 3; i++) await writer.data(Buffer.alloc(64 * 1024));
    } finally {
      clearInterval(reading);
    }
  });
});

describe('frames ending a session', () => {
  it('last() writes one final message and refuses pending and later frames', async () => {
    const wire = new PassThrough({ highWaterMark: 16 });
    const writer = new FrameWriter(wire, { peer: 'client' });
    const pending = writer.data(Buffer.alloc(100, 1));
    writer.last({ type: 'error', code: 'TIMEOUT', message: 'limit' });
    writer.last({ type: 'error', code: 'OTHER', message: 'second' });
    await assert.rejects(pending, { code: 'PROTOCOL' });
    await assert.rejects(writer.json({ type: 'error', code: 'ABORTED' }), { code: 'PROTOCOL' });
    wire.end();
    const reader = new FrameReader(wire, { maxJson: 1024, peer: 'server' });
    assert.equal((await reader.next())?.kind, 'data');
    assert.deepEqual(await reader.next(), {
      kind: 'json',
      message: { type: 'error', code: 'TIMEOUT', message: 'limit' },
    });
    assert.equal(await reader.next(), null);
  });

  it('a reader rejects a pending and every later next() once its signal aborts', async () => {
    const wire = new PassThrough();
    const controller = new AbortController();
    const reader = new FrameReader(wire, {
      maxJson: 1024,
      peer: 'client',
      signal: controller.signal,
    });
    const pending = reader.next();
    const reason = new Error('server got SIGTERM');
    controller.abort(reason);
    await assert.rejects(pending, reason);
    await new FrameWriter(wire, { peer: 'p' }).json({ type: 'hello' });
    await assert.rejects(reader.next(), reason);
  });
});

describe('--server limit options', () => {
  it('parses the limits in both spellings and refuses bad values', () => {
    assert.deepEqual(
      parseServerArgs([
        '--server',
        '--mode',
        'a',
        '--idle-seconds',
        '30',
        '--max-seconds=3600',
        '--max-sessions',
        '0',
        '/srv',
      ]),
      { mode: 'a', root: '/srv', idleSeconds: 30, maxSeconds: 3600, maxSessions: 0 },
    );
    assert.deepEqual(parseServerArgs(['--server', '--mode=r', '/srv']), {
      mode: 'r',
      root: '/srv',
    });
    assert.match(
      String(parseServerArgs(['--server', '--mode', 'r', '--idle-seconds', '-1', '/srv'])),
      /--idle-seconds must be a whole number/,
    );
    assert.match(
      String(parseServerArgs(['--server', '--mode', 'r', '--max-sessions', '2.5', '/srv'])),
      /--max-sessions must be a whole number/,
    );
    assert.equal(
      parseServerArgs(['--server', '--mode', 'r', '--max-seconds']),
      '--max-seconds needs a value',
    );
    assert.equal(
      parseServerArgs(['--server', '--mode', 'r', '--slots-dir', '/tmp', '/srv']),
      'unknown server option --slots-dir',
    );
  });
});
