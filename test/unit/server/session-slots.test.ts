import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FrameReader, FrameWriter } from '../../../src/wire/frame.js';
import { SESSION_EXIT, serveSession } from '../../../src/server/serve-session.js';
import { acquireSessionSlot } from '../../../src/server/session-slots.js';
import type { SessionSlot } from '../../../src/server/session-slots.js';

/** The pid of a process that has exited. */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid;
  assert.ok(pid > 0);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  return pid;
}

describe('session slots', () => {
  let base: string;
  let n = 0;
  /** A fresh slot directory (not yet created). */
  const fresh = () => join(base, `slots-${n++}`);
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'bs-slots-'));
  });
  after(async () => rm(base, { recursive: true, force: true }));

  it('grants N concurrent slots and refuses the N+1st', async () => {
    const dir = fresh();
    const slots = await Promise.all([1, 2, 3].map(() => acquireSessionSlot({ dir, max: 3 })));
    assert.ok(slots.every((s) => s !== null));
    assert.deepEqual(new Set(slots.map((s) => s!.path)).size, 3);
    assert.equal(await acquireSessionSlot({ dir, max: 3 }), null);
    assert.deepEqual((await readdir(dir)).sort(), ['slot-0', 'slot-1', 'slot-2']);
    for (const s of slots) assert.equal(await readFile(s!.path, 'utf8'), `${process.pid}\n`);
    assert.equal((await stat(dir)).mode & 0o777, 0o700, 'created 0700');
    await Promise.all(slots.map((s) => s!.release()));
  });

  it('never grants more than N, even to many acquiring at once over stale slots', async () => {
    const dir = fresh();
    await mkdir(dir, { mode: 0o700 });
    const dead = deadPid();
    for (const k of [0, 2]) await writeFile(join(dir, `slot-${k}`), `${dead}\n`);
    const got = await Promise.all(
      Array.from({ length: 24 }, () => acquireSessionSlot({ dir, max: 3 })),
    );
    const held = got.filter((s): s is SessionSlot => s !== null);
    assert.equal(held.length, 3);
    assert.equal(new Set(held.map((s) => s.path)).size, 3);
    assert.deepEqual((await readdir(dir)).sort(), ['slot-0', 'slot-1', 'slot-2']);
    await Promise.all(held.map((s) => s.release()));
  });

  it('reuses a slot whose pid no longer runs, but not one of a running process', async () => {
    const dir = fresh();
    await mkdir(dir, { mode: 0o700 });
    await writeFile(join(dir, 'slot-0'), `${deadPid()}\n`);
    const slot = await acquireSessionSlot({ dir, max: 1 });
    assert.equal(slot?.path, join(dir, 'slot-0'));
    assert.equal(await readFile(slot.path, 'utf8'), `${process.pid}\n`);
    await slot.release();
    await writeFile(join(dir, 'slot-0'), '1\n'); // init: always running
    assert.equal(await acquireSessionSlot({ dir, max: 1 }), null);
  });

  it('release frees the slot, and only while it still names this process', async () => {
    const dir = fresh();
    const a = await acquireSessionSlot({ dir, max: 1 });
    assert.ok(a);
    assert.equal(await acquireSessionSlot({ dir, max: 1 }), null);
    await a.release();
    await a.release();
    assert.deepEqual(await readdir(dir), []);
    const b = await acquireSessionSlot({ dir, max: 1 });
    assert.ok(b);
    await writeFile(b.path, '1\n'); // taken over meanwhile by another holder
    await b.release();
    assert.equal(await readFile(b.path, 'utf8'), '1\n');
  });

  it('refuses a slot directory others may write to', async () => {
    const dir = fresh();
    await mkdir(dir);
    await chmod(dir, 0o777);
    await assert.rejects(acquireSessionSlot({ dir, max: 1 }), {
      code: 'SLOTS',
      message: /writable by others/,
    });
  });

  it('a server session holds a slot while it runs and answers BUSY when none is free', async () => {
    const dir = fresh();
    const root = base;
    const open = () => {
      const toServer = new PassThrough();
      const toClient = new PassThrough();
      const exit = serveSession({
        input: toServer,
        output: toClient,
        mode: 'r',
        root,
        sessionSlots: { dir, max: 1 },
      });
      const reader = new FrameReader(toClient, { maxJson: 1 << 20, peer: 'server' });
      const writer = new FrameWriter(toServer, { peer: 'server' });
      const next = async () => {
        const f = await reader.next();
        return f?.kind === 'json' ? (f.message as Record<string, unknown>) : null;
      };
      return { toServer, exit, writer, next };
    };
    const first = open();
    assert.equal((await first.next())?.type, 'hello');
    await first.writer.json({ type: 'hello', version: 1 });
    assert.deepEqual(await readdir(dir), ['slot-0']);

    const second = open();
    assert.equal((await second.next())?.type, 'hello', 'the refusal comes after the handshake');
    await second.writer.json({ type: 'hello', version: 1 });
    assert.deepEqual(await second.next(), {
      type: 'error',
      code: 'BUSY',
      message: '1 buttersink server sessions already running (limit 1); try again later',
    });
    assert.equal(await second.next(), null);
    assert.equal(await second.exit, SESSION_EXIT.busy);

    first.toServer.end();
    assert.equal(await first.exit, SESSION_EXIT.ok);
    assert.deepEqual(await readdir(dir), [], 'released when the session ended');
  });
});
