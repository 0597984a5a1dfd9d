import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { filesystemShow, filesystemUsage, syncFilesystem } from '../../src/btrfs/filesystem.js';
import { isBtrfs, isSubvolume } from '../../src/btrfs/mountinfo.js';
import { disableQuota, enableQuota, qgroupSizes } from '../../src/btrfs/qgroup.js';
import { listSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { deleteSubvolume, getReadOnly, setReadOnly, snapshot } from '../../src/btrfs/subvolume.js';
import { setLogger } from '../../src/log.js';
import { AbortedError, CommandError, ReceiveError, StoreError } from '../../src/errors.js';
import { btrfsReceive } from '../../src/stages/btrfs-receive.js';
import { btrfsSend } from '../../src/stages/btrfs-send.js';
import { TREE_NAMES, createBtrfs, makeTree, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true });

const sha256 = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

function list300(dir: string): string[] {
  return Array.from({ length: 300 }, (_, i) => join(dir, `snap ${String(i).padStart(3, '0')}`));
}

function processGone(pid: number | undefined): boolean {
  assert.ok(pid !== undefined && pid > 0, 'a pid was recorded');
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Passes `limit` bytes, then calls `onLimit` and holds every later chunk (never ends). */
function cutAfter(limit: number, onLimit: (t: Transform) => void): Transform {
  let seen = 0;
  let fired = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (seen >= limit) {
        if (!fired) {
          fired = true;
          onLimit(this);
        }
        return;
      }
      seen += chunk.length;
      cb(null, chunk);
    },
  });
}

describe('btrfs wrapper and send/receive stages', { skip: prereqs.skip }, () => {
  let fs: BtrfsFs;
  let vol: string;
  let snaps: string;
  let s1: string;
  let s2: string;

  before(async () => {
    fs = await createBtrfs({ size: 768 << 20, label: 'bs test' });
    vol = await subvolume(join(fs.mnt, 'vol a'));
    await makeTree(vol, 0, { bigMiB: 24 });
    snaps = join(fs.mnt, 'snap dir');
    await mkdir(snaps);
    s1 = join(snaps, 's 1');
    await snapshot(vol, s1);
    await makeTree(vol, 1);
    s2 = join(snaps, 's 2');
    await snapshot(vol, s2);
  });
  after(async () => fs?.cleanup());

  it('detects btrfs and subvolumes without spawning', async () => {
    assert.equal(await isBtrfs(fs.mnt), true);
    assert.equal(await isBtrfs('/proc'), false);
    assert.equal(await isSubvolume(s1), true);
    assert.equal(await isSubvolume(snaps), false);
    assert.equal(await isSubvolume('/nonexistent'), false);
  });

  it('lists subvolumes below a directory, with spaces, UUIDs and flags', async () => {
    const volInfo = await subvolumeShow(vol);
    const list = await listSubvolumes(snaps, { transids: true });
    assert.deepEqual(
      list.map((s) => s.path),
      ['s 1', 's 2'],
    );
    const [a, b] = list;
    assert.ok(a && b);
    assert.equal(a.absPath, s1);
    assert.equal(a.fsPath, 'snap dir/s 1');
    assert.equal(a.parentUuid, volInfo.uuid);
    assert.equal(a.receivedUuid, undefined);
    assert.match(a.uuid ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(a.readOnly, true);
    assert.ok(a.otime instanceof Date && Math.abs(a.otime.getTime() - Date.now()) < 600_000);
    assert.ok(b.otransid > a.otransid, 'second snapshot is newer');
    assert.equal(typeof a.ctransid, 'number');
    assert.equal(a.stransid, 0);
    const all = await listSubvolumes(fs.mnt);
    assert.deepEqual(
      all.map((s) => s.path),
      ['snap dir/s 1', 'snap dir/s 2', 'vol a'],
    );
    assert.equal(all[2]?.readOnly, false);
    assert.equal(all[2]?.otime, undefined);
  });

  it('lists 300 snapshots with two btrfs processes (read-only flags by access(2))', async () => {
    const many = join(fs.mnt, 'many');
    await mkdir(many);
    for (let i = 0; i < 300; i++)
      await snapshot(vol, join(many, `snap ${String(i).padStart(3, '0')}`));
    let spawned = 0;
    const prev = setLogger({
      warn: () => undefined,
      debug: (message) => {
        if (message === 'exec' || message === 'spawn') spawned++;
      },
    });
    try {
      const list = await listSubvolumes(many);
      assert.equal(list.length, 300);
      assert.equal(list[299]?.path, 'snap 299');
      assert.ok(list.every((s) => s.readOnly && s.otime !== undefined));
    } finally {
      setLogger(prev);
    }
    assert.equal(spawned, 2);
    await deleteSubvolume(list300(many));
  });

  it('maps paths through a subvol= mount', async () => {
    const other = join(fs.mnt, '..', 'subvol mount');
    await mkdir(other);
    const show = await filesystemShow(fs.mnt);
    const dev = show.devices[0]?.path;
    assert.ok(dev);
    await execa('mount', ['-o', 'subvol=snap dir/s 1', dev, other]);
    try {
      // A nested writable snapshot inside s 1 is impossible (ro), so list the mount of s 1 itself.
      assert.deepEqual(await listSubvolumes(other), []);
    } finally {
      await execa('umount', [other]);
    }
    await execa('mount', ['-o', 'subvol=/', dev, other]);
    try {
      const list = await listSubvolumes(join(other, 'snap dir'));
      assert.deepEqual(
        list.map((s) => s.absPath),
        [join(other, 'snap dir', 's 1'), join(other, 'snap dir', 's 2')],
      );
    } finally {
      await execa('umount', [other]);
    }
  });

  it('sends and receives full and incremental streams, keeping UUID chains', async () => {
    const recv = join(fs.mnt, 'recv');
    await mkdir(recv);
    const send1 = btrfsSend({ path: s1 });
    const recv1 = btrfsReceive({ dir: recv });
    await pipeline(send1.stream, recv1.stream);
    const r1 = await recv1.result;
    assert.deepEqual(r1, { path: join(recv, 's 1'), name: 's 1' });
    assert.ok((await send1.result).bytes > 24 << 20);
    const s1Info = await subvolumeShow(s1);
    const r1Info = await subvolumeShow(r1.path);
    assert.equal(r1Info.receivedUuid, s1Info.uuid);
    assert.equal(r1Info.readOnly, true);

    const send2 = btrfsSend({ path: s2, parent: s1 });
    const recv2 = btrfsReceive({ dir: recv });
    await pipeline(send2.stream, recv2.stream);
    const r2 = await recv2.result;
    assert.equal(r2.name, 's 2');
    assert.ok((await send2.result).bytes < 8 << 20, 'incremental stream is small');
    const listed = await listSubvolumes(recv);
    const s2Info = await subvolumeShow(s2);
    assert.deepEqual(
      listed.map((s) => [s.path, s.receivedUuid, s.readOnly]),
      [
        ['s 1', s1Info.uuid, true],
        ['s 2', s2Info.uuid, true],
      ],
    );
    assert.equal(listed[1]?.parentUuid, r1Info.uuid);
    assert.equal(
      await sha256(join(r2.path, TREE_NAMES.big)),
      await sha256(join(s2, TREE_NAMES.big)),
    );
    assert.equal(await readlink(join(r2.path, 'dir-1', 'symlink')), '../new-1.txt');
    assert.equal((await stat(join(r2.path, 'a.txt'))).nlink, 2);
    const { stdout } = await execa('getfattr', [
      '--only-values',
      '-n',
      'user.buttersink',
      join(r2.path, 'a.txt'),
    ]);
    assert.equal(stdout, 'step1');
  });

  it('produces smaller --no-data and proto 2 streams that start with the stream magic', async () => {
    let head: Buffer | undefined;
    const first = new Writable({
      write(chunk: Buffer, _e, cb) {
        head ??= chunk.subarray(0, 17);
        cb();
      },
    });
    const probe = btrfsSend({ path: s2, parent: s1, noData: true, proto: 2 });
    await pipeline(probe.stream, first);
    assert.ok((await probe.result).bytes < 64 * 1024);
    assert.equal(head?.subarray(0, 13).toString('latin1'), 'btrfs-stream\0');
    assert.equal(head?.readUInt32LE(13), 2);
  });

  it('toggles the read-only flag', async () => {
    const w = await subvolume(join(fs.mnt, 'writable'));
    assert.equal(await getReadOnly(w), false);
    await setReadOnly(w, true);
    assert.equal(await getReadOnly(w), true);
    assert.equal((await listSubvolumes(fs.mnt)).find((s) => s.absPath === w)?.readOnly, true);
    await setReadOnly(w, false);
    assert.equal(await getReadOnly(w), false);
    await deleteSubvolume(w);
  });

  it('snapshots and deletes', async () => {
    const t = join(snaps, 'tmp snap');
    await snapshot(vol, t, { readOnly: true });
    assert.ok((await listSubvolumes(snaps)).some((s) => s.path === 'tmp snap'));
    await assert.rejects(snapshot(vol, t), StoreError);
    await deleteSubvolume(t);
    assert.ok(!(await listSubvolumes(snaps)).some((s) => s.path === 'tmp snap'));
    await syncFilesystem(fs.mnt);
  });

  it('reports qgroup sizes when quotas are on, an empty map when off', async () => {
    assert.equal((await qgroupSizes(fs.mnt)).size, 0);
    await enableQuota(fs.mnt);
    try {
      const sizes = await qgroupSizes(fs.mnt);
      const v = await subvolumeShow(vol);
      const q = sizes.get(v.id);
      assert.ok(q, 'the subvolume has a qgroup');
      assert.ok(q.total >= 24 << 20, `total ${q.total} counts the big file`);
      assert.ok(q.exclusive <= q.total);
    } finally {
      await disableQuota(fs.mnt);
    }
    assert.equal((await qgroupSizes(fs.mnt)).size, 0);
  });

  it('reports filesystem label, uuid, devices and usage', async () => {
    const show = await filesystemShow(fs.mnt);
    assert.equal(show.label, 'bs test');
    assert.match(show.uuid, /^[0-9a-f-]{36}$/);
    assert.equal(show.devices.length, 1);
    assert.equal(show.devices[0]?.size, 768 << 20);
    const usage = await filesystemUsage(fs.mnt);
    assert.equal(usage.deviceSize, 768 << 20);
    assert.ok(usage.used > 0);
  });

  it('fails a send of a nonexistent path with CommandError and its stderr', async () => {
    const send = btrfsSend({ path: join(fs.mnt, 'nope') });
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const err = await pipeline(send.stream, sink).catch((e: unknown) => e);
    assert.ok(err instanceof CommandError, String(err));
    assert.match(err.stderr, /nope/);
    assert.notEqual(err.exitCode, 0);
    await assert.rejects(send.result, CommandError);
  });

  it('kills the sender when its stream is destroyed', async () => {
    const send = btrfsSend({ path: s1 });
    await new Promise<void>((resolve) => send.stream.once('readable', resolve));
    const pid = send.pid;
    assert.ok(pid);
    send.stream.destroy();
    await new Promise((resolve) => send.stream.once('close', resolve));
    assert.ok(processGone(pid), `btrfs send (pid ${pid}) was reaped`);
    await assert.rejects(send.result, AbortedError);
  });

  it('kills the receiver on abort mid-stream and reports the partial subvolume', async () => {
    const dir = join(fs.mnt, 'recv-abort');
    await mkdir(dir);
    const ac = new AbortController();
    const send = btrfsSend({ path: s1, signal: ac.signal });
    const recv = btrfsReceive({ dir, signal: ac.signal });
    const cut = cutAfter(2 << 20, () => ac.abort());
    const err = await pipeline(send.stream, cut, recv.stream, { signal: ac.signal }).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error && /abort/i.test(err.name + err.message), String(err));
    const rerr = await recv.result.catch((e: unknown) => e);
    assert.ok(rerr instanceof ReceiveError, String(rerr));
    assert.ok(rerr.cause instanceof AbortedError);
    assert.equal(rerr.partialPath, join(dir, 's 1'));
    assert.doesNotMatch(rerr.stderr, /EOF/, 'the receiver was killed, not fed an EOF');
    assert.ok(processGone(recv.pid), 'btrfs receive was reaped');
    await assert.rejects(send.result, AbortedError);
    assert.ok(processGone(send.pid), 'btrfs send was reaped');
    const partial = await subvolumeShow(join(dir, 's 1'));
    assert.equal(partial.receivedUuid, undefined);
    assert.equal(partial.readOnly, false);
  });

  it('kills the receiver when an upstream stage fails', async () => {
    const dir = join(fs.mnt, 'recv-upstream');
    await mkdir(dir);
    const send = btrfsSend({ path: s1 });
    const recv = btrfsReceive({ dir });
    const boom = new Error('upstream broke');
    const cut = cutAfter(1 << 20, (t) => t.destroy(boom));
    await assert.rejects(pipeline(send.stream, cut, recv.stream), /upstream broke/);
    const rerr = await recv.result.catch((e: unknown) => e);
    assert.ok(rerr instanceof ReceiveError);
    assert.equal(rerr.cause, boom);
    assert.equal(rerr.partialPath, join(dir, 's 1'));
    assert.ok(processGone(recv.pid));
  });

  it('fails a truncated stream with the receiver error and the partial path', async () => {
    const dir = join(fs.mnt, 'recv-trunc');
    await mkdir(dir);
    const send = btrfsSend({ path: s1 });
    let seen = 0;
    const truncate = new Transform({
      transform(chunk: Buffer, _e, cb) {
        const room = Math.max(0, (1 << 20) - seen);
        seen += chunk.length;
        cb(null, chunk.subarray(0, room));
      },
    });
    const recv = btrfsReceive({ dir });
    const err = await pipeline(send.stream, truncate, recv.stream).catch((e: unknown) => e);
    assert.ok(err instanceof ReceiveError, String(err));
    assert.match(err.stderr, /EOF|stream/i);
    assert.equal(err.partialPath, join(dir, 's 1'));
    assert.equal(await recv.result.catch((e: unknown) => e), err);
  });

  it('does not report an existing subvolume as partial', async () => {
    const dir = join(fs.mnt, 'recv');
    const recv = btrfsReceive({ dir });
    const send = btrfsSend({ path: s1 });
    const err = await pipeline(send.stream, recv.stream).catch((e: unknown) => e);
    assert.ok(err instanceof ReceiveError, String(err));
    assert.equal(err.partialPath, undefined);
    assert.equal((await subvolumeShow(join(dir, 's 1'))).readOnly, true, 'left untouched');
  });
});
