import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FRAME_DATA, FrameReader, FrameWriter } from '../../../src/wire/frame.js';
import type { ServerMode } from '../../../src/wire/protocol.js';
import { helloStreams } from '../../../src/wire/protocol.js';
import { localStreamSupport } from '../../../src/btrfs/send-capabilities.js';
import { SESSION_EXIT, serveSession } from '../../../src/server/serve-session.js';

const U = '0c5a4b8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d';

/** A session served in-process over two pipes, with a client end to drive it. */
function open(mode: ServerMode, root: string) {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const exit = serveSession({ input: toServer, output: toClient, mode, root });
  const reader = new FrameReader(toClient, { maxJson: 1 << 20, peer: 'server' });
  const writer = new FrameWriter(toServer, { peer: 'server' });
  const next = async () => {
    const f = await reader.next();
    return f?.kind === 'json' ? (f.message as Record<string, unknown>) : f;
  };
  return { toServer, exit, reader, writer, next };
}

function noStack(m: unknown): void {
  const text = JSON.stringify(m);
  assert.doesNotMatch(text, /\\n|\s+at\s|\.ts:\d+/, `no stack trace on the wire: ${text}`);
}

describe('serveSession', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'bs-serve-'));
    await mkdir(join(root, 'dir'));
    await symlink('/', join(root, 'out'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('speaks first with a versioned hello and ends cleanly at end of input', async () => {
    const s = open('r', root);
    const { streams, ...hello } = (await s.next()) as Record<string, unknown>;
    assert.deepEqual(hello, {
      type: 'hello',
      protocol: 'buttersink',
      versions: [1, 2],
      mode: 'r',
    });
    // What this host can do with send stream protocol 2 (see send-capabilities.ts).
    assert.deepEqual(streams, helloStreams(await localStreamSupport()));
    await s.writer.json({ type: 'hello', version: 1 });
    s.toServer.end();
    assert.equal(await s.exit, SESSION_EXIT.ok);
  });

  it('refuses a protocol version it does not speak', async () => {
    const s = open('w', root);
    await s.next();
    await s.writer.json({ type: 'hello', version: 99 });
    const m = (await s.next()) as Record<string, unknown>;
    assert.equal(m.type, 'error');
    assert.equal(m.code, 'VERSION');
    noStack(m);
    assert.equal(await s.exit, SESSION_EXIT.protocol);
  });

  it('ends the session on bytes that are not frames', async () => {
    const s = open('w', root);
    await s.next();
    s.toServer.write('GET / HTTP/1.1\r\n\r\n');
    const m = (await s.next()) as Record<string, unknown>;
    assert.equal(m.code, 'PROTOCOL');
    assert.equal(await s.exit, SESSION_EXIT.protocol);
  });

  it('refuses an oversize control message without reading it', async () => {
    const s = open('w', root);
    await s.next();
    await s.writer.json({ type: 'hello', version: 1 });
    await s.writer.json({ type: 'request', op: 'list', role: 'x'.repeat(70_000) });
    const m = (await s.next()) as Record<string, unknown>;
    assert.equal(m.code, 'PROTOCOL');
    assert.match(String(m.message), /limit 65536/);
    assert.equal(await s.exit, SESSION_EXIT.protocol);
  });

  it('refuses data outside a receive', async () => {
    const s = open('w', root);
    await s.next();
    await s.writer.json({ type: 'hello', version: 1 });
    const h = Buffer.from([FRAME_DATA, 0, 0, 0, 1, 0]);
    s.toServer.write(h);
    assert.equal(((await s.next()) as Record<string, unknown>).code, 'PROTOCOL');
    assert.equal(await s.exit, SESSION_EXIT.protocol);
  });

  it('refuses by mode, bad requests and unsafe paths, answering each and touching nothing', async () => {
    const before = await readdir(root);
    const ask = async (mode: ServerMode, requests: object[], exit: number = SESSION_EXIT.ok) => {
      const s = open(mode, root);
      await s.next();
      await s.writer.json({ type: 'hello', version: 1 });
      const answers: Record<string, unknown>[] = [];
      for (const r of requests) {
        await s.writer.json({ type: 'request', ...r });
        const m = (await s.next()) as Record<string, unknown>;
        noStack(m);
        answers.push(m);
      }
      s.toServer.end();
      assert.equal(await s.exit, exit, 'refusals do not end the session, a stream operation does');
      return answers.map((a) => `${String(a.type)} ${String(a.code)}: ${String(a.message)}`);
    };
    const vol = { uuid: U, path: 'dir' };
    const r = await ask('r', [
      { op: 'receive', to: vol, from: null },
      { op: 'delete', volume: vol },
      { op: 'deletePartials', paths: [] },
    ]);
    assert.match(
      r[0]!,
      /^error MODE: receive refused: this server runs in mode 'r' \(receive needs 'a'/,
    );
    assert.match(r[1]!, /^error MODE: delete refused/);
    assert.match(r[2]!, /^error MODE: deletePartials refused/);
    const a = await ask('a', [{ op: 'delete', volume: vol }]);
    assert.match(a[0]!, /^error MODE: delete refused: this server runs in mode 'a'/);
    const w = await ask(
      'w',
      [
        { op: 'delete', volume: { uuid: U, path: '../etc' } },
        { op: 'delete', volume: { uuid: U, path: '/etc' } },
        { op: 'delete', volume: { uuid: U, path: 'out/etc' } },
        { op: 'measure', to: { uuid: U, path: 'out/etc' }, from: null },
        { op: 'exec', command: 'id' },
        { op: 'send', to: { uuid: U, path: 'out' }, from: null },
      ],
      SESSION_EXIT.failed,
    );
    assert.match(w[0]!, /^error PATH: refusing path "..\/etc"/);
    assert.match(w[1]!, /^error PATH: refusing absolute path/);
    assert.match(w[2]!, /^error PATH: refusing out\/etc: out is a symlink/);
    assert.match(w[3]!, /^error PATH: .*symlink/);
    assert.match(w[4]!, /^error BAD_REQUEST: unknown operation "exec"/);
    assert.match(w[5]!, /^error PATH: .*symlink/);
    assert.deepEqual(await readdir(root), before);
  });

  it('version 2 requests from a hostile client: preflight through a symlink, lock in mode r', async () => {
    const before = await readdir(root);
    const s = open('a', root);
    await s.next();
    await s.writer.json({ type: 'hello', version: 2 });
    const ask = async (r: object) => {
      await s.writer.json({ type: 'request', ...r });
      const m = (await s.next()) as Record<string, unknown>;
      noStack(m);
      return `${String(m.type)} ${String(m.code)}: ${String(m.message)}`;
    };
    const escape = { to: { uuid: U, path: 'out/etc/x' }, size: 1, estimated: false };
    assert.match(
      await ask({ op: 'preflight', transfers: [escape], spaceCheck: true }),
      /^error PATH: refusing out\/etc\/x: out is a symlink/,
    );
    assert.match(await ask({ op: 'ping' }), /^result undefined/);
    s.toServer.end();
    await s.exit;
    const r = open('r', root);
    await r.next();
    await r.writer.json({ type: 'hello', version: 2 });
    await r.writer.json({ type: 'request', op: 'lock', command: 'x' });
    const refused = (await r.next()) as Record<string, unknown>;
    assert.equal(refused.code, 'MODE');
    r.toServer.end();
    await r.exit;
    assert.deepEqual(await readdir(root), before, 'nothing written: no lock file, no receive');
  });

  it('reports a served directory that does not exist after the handshake', async () => {
    const s = open('r', join(root, 'missing'));
    await s.next();
    await s.writer.json({ type: 'hello', version: 1 });
    const m = (await s.next()) as Record<string, unknown>;
    assert.equal(m.code, 'NO_SUCH_DIRECTORY', 'the code of a local LocationError');
    assert.match(String(m.message), /missing/);
  });
});
