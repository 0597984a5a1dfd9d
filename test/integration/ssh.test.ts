import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { listSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { buttersinkMain } from '../../src/cli.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { HostKeyError, StreamCorruptError, findCause } from '../../src/errors.js';
import { setLogger } from '../../src/log.js';
import { RemoteOperationError } from '../../src/wire/protocol.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import type { SshStoreOptions } from '../../src/stores/ssh/ssh-store.js';
import type { Store } from '../../src/stores/store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, SshLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { flipDataByte, sendingBytes } from '../fixtures/corrupt-stream.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { otherHostKey, pidsWithCommandLine, startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true, sshd: true });

/** Read-only, non-partial snapshots below `dir`: path → received UUID (or own UUID). */
async function snapshotsIn(dir: string): Promise<Map<string, string>> {
  const subs = await listSubvolumes(dir);
  return new Map(
    subs.filter((s) => s.readOnly).map((s) => [s.path, s.receivedUuid ?? s.uuid ?? '?']),
  );
}

async function allSubvolumes(dir: string): Promise<string[]> {
  return (await listSubvolumes(dir)).map((s) => `${s.path}${s.readOnly ? ' ro' : ' rw'}`).sort();
}

/** `diff -r` of two trees, symlinks compared as links; throws with the diff when they differ. */
async function assertSameTree(a: string, b: string): Promise<void> {
  const r = await execa('diff', ['-r', '--no-dereference', a, b], { reject: false });
  assert.equal(r.exitCode, 0, `trees differ:\n${r.stdout}\n${r.stderr}`);
}

async function waitUntil(what: string, fn: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('ssh store against OpenSSH sshd', { skip: prereqs.skip }, () => {
  let sshd: Sshd;
  let local: BtrfsFs;
  let remote: BtrfsFs;
  let vol: string;
  const stores: Store[] = [];
  const warnings: string[] = [];
  let restoreLogger: (() => void) | undefined;

  const localStore = (dir: string): BtrfsStore => {
    const s = new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
    stores.push(s);
    return s;
  };
  const sshStore = (dir: string, opts: SshStoreOptions = {}): SshStore => {
    const s = new SshStore(parseLocation(`ssh://${sshd.alias}${dir}/`) as SshLocation, {
      home: sshd.home,
      agent: false,
      remoteCommand: sshd.remoteCommand,
      ...opts,
    });
    stores.push(s);
    return s;
  };

  before(async () => {
    const prev = setLogger({ warn: (w) => warnings.push(w.message), debug: () => undefined });
    restoreLogger = () => setLogger(prev);
    sshd = await startSshd();
    local = await createBtrfs({ size: 768 << 20, label: 'ssh local' });
    remote = await createBtrfs({ size: 768 << 20, label: 'ssh remote' });
    vol = await subvolume(join(local.mnt, 'vol'));
    await mkdir(join(local.mnt, 'snaps'));
    for (let step = 0; step < 3; step++) {
      await makeTree(vol, step, { bigMiB: 8 });
      await snapshot(vol, join(local.mnt, 'snaps', `s${step}`));
    }
    await mkdir(join(remote.mnt, 'backup'));
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    restoreLogger?.();
    await sshd?.stop();
    await remote?.cleanup();
    await local?.cleanup();
  });

  it('pushes a snapshot chain btrfs → ssh with identical content and preserved UUIDs', async () => {
    const dest = sshStore(join(remote.mnt, 'backup'), { mode: 'a' });
    const report = await sync(localStore(join(local.mnt, 'snaps')), dest);
    assert.equal(report.transferred.length, 3);
    assert.equal(
      report.transferred.filter((t) => t.transfer.from !== null).length,
      2,
      'incrementals',
    );
    const src = await snapshotsIn(join(local.mnt, 'snaps'));
    const got = await snapshotsIn(join(remote.mnt, 'backup'));
    assert.deepEqual([...got.entries()].sort(), [...src.entries()].sort());
    for (const name of src.keys()) {
      await assertSameTree(join(local.mnt, 'snaps', name), join(remote.mnt, 'backup', name));
    }
    const view = await dest.view('dest');
    assert.equal(view.kind, 'ssh');
    assert.deepEqual(view.volumes.map((v) => v.uuid).sort(), [...src.values()].sort());
  });

  it('reruns the push and transfers nothing', async () => {
    const report = await sync(
      localStore(join(local.mnt, 'snaps')),
      sshStore(join(remote.mnt, 'backup'), { mode: 'a' }),
    );
    assert.equal(report.transferred.length, 0);
    assert.equal(report.plan.transfers.length, 0);
  });

  it('pulls the chain ssh → btrfs (remote in mode r) with the same UUIDs and content', async () => {
    const pulled = join(local.mnt, 'pulled');
    await mkdir(pulled);
    const source = sshStore(join(remote.mnt, 'backup'), { mode: 'r' });
    const report = await sync(source, localStore(pulled));
    assert.equal(report.transferred.length, 3);
    const src = await snapshotsIn(join(local.mnt, 'snaps'));
    const got = await snapshotsIn(pulled);
    assert.deepEqual([...got.entries()].sort(), [...src.entries()].sort());
    for (const name of src.keys()) {
      await assertSameTree(join(local.mnt, 'snaps', name), join(pulled, name));
    }
    const again = await sync(source, localStore(pulled));
    assert.equal(again.transferred.length, 0, 'rerun transfers nothing');
  });

  it('measures on the remote with the size probe (mode r writes no .bs file)', async () => {
    const source = sshStore(join(remote.mnt, 'backup'), { mode: 'r' });
    const view = await source.view('source');
    const [s1, s2] = ['s1', 's2'].map((p) => view.volumes.find((v) => v.path === p)!);
    const bytes = await source.measure(s2!, s1!);
    assert.ok(bytes > 64 * 1024 && bytes < 8 << 20, `incremental estimate ${bytes}`);
    await assert.rejects(readFile(join(remote.mnt, 'backup', 's2.bs')), { code: 'ENOENT' });
  });

  it('lists through the CLI (ssh:// URI, ~/.ssh/config alias, --remote-command)', async () => {
    const env = { HOME: process.env.HOME, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK };
    process.env.HOME = sshd.home;
    delete process.env.SSH_AUTH_SOCK;
    const out: string[] = [];
    const err: string[] = [];
    const sink = (into: string[]) =>
      Object.assign(new PassThrough(), { write: (s: string) => (into.push(s), true) });
    try {
      const code = await buttersinkMain(
        [
          '--remote-command',
          sshd.remoteCommand,
          `ssh://${sshd.alias}${join(remote.mnt, 'backup')}/`,
        ],
        { stdout: sink(out), stderr: sink(err) },
      );
      assert.equal(code, 0, err.join(''));
    } finally {
      process.env.HOME = env.HOME;
      if (env.SSH_AUTH_SOCK !== undefined) process.env.SSH_AUTH_SOCK = env.SSH_AUTH_SOCK;
    }
    const text = out.join('');
    for (const uuid of (await snapshotsIn(join(remote.mnt, 'backup'))).values()) {
      assert.ok(text.includes(uuid), text);
    }
    assert.match(text, /TOTAL: 3 snapshot\(s\)/);
  });

  it('refuses an unknown host key with its fingerprint, and accept-new adds it', async () => {
    const kh = join(sshd.dir, 'kh-empty');
    await writeFile(kh, '');
    await assert.rejects(
      sshStore(join(remote.mnt, 'backup'), { knownHostsFiles: [kh] }).view('dest'),
      (err: unknown) => {
        assert.ok(err instanceof HostKeyError, String(err));
        assert.match(err.message, /not known/);
        assert.match(err.message, /SHA256:[A-Za-z0-9+/]{43}/);
        assert.match(err.message, /--accept-new-host-key/);
        return true;
      },
    );
    const accepted = sshStore(join(remote.mnt, 'backup'), {
      knownHostsFiles: [kh],
      acceptNewHostKey: true,
      mode: 'r',
    });
    assert.equal((await accepted.view('dest')).volumes.length, 3);
    assert.equal(await readFile(kh, 'utf8'), sshd.knownHostsLine);
    const later = sshStore(join(remote.mnt, 'backup'), { knownHostsFiles: [kh], mode: 'r' });
    assert.equal((await later.view('dest')).volumes.length, 3);
  });

  it('refuses a changed host key loudly, even with accept-new', async () => {
    const kh = join(sshd.dir, 'kh-changed');
    const other = otherHostKey(sshd.dir);
    await writeFile(kh, `[127.0.0.1]:${sshd.port} ssh-ed25519 ${other.toString('base64')}\n`);
    await assert.rejects(
      sshStore(join(remote.mnt, 'backup'), { knownHostsFiles: [kh], acceptNewHostKey: true }).view(
        'dest',
      ),
      (err: unknown) => {
        assert.ok(err instanceof HostKeyError, String(err));
        assert.match(err.message, /HOST KEY FOR \[127\.0\.0\.1\]:\d+ HAS CHANGED/);
        assert.match(err.message, /kh-changed:1/);
        return true;
      },
    );
    assert.equal(
      await readFile(kh, 'utf8'),
      `[127.0.0.1]:${sshd.port} ssh-ed25519 ${other.toString('base64')}\n`,
    );
  });

  it('an r server refuses to receive; the remote is unchanged', async () => {
    const dir = join(remote.mnt, 'readonly');
    await mkdir(dir);
    const before = await allSubvolumes(remote.mnt);
    await assert.rejects(
      sync(localStore(join(local.mnt, 'snaps')), sshStore(dir, { mode: 'r' })),
      (err: unknown) => {
        assert.ok(err instanceof RemoteOperationError, String(err));
        assert.equal(err.remoteCode, 'MODE');
        assert.match(err.message, /receive refused: this server runs in mode 'r'/);
        return true;
      },
    );
    assert.deepEqual(await allSubvolumes(remote.mnt), before);
  });

  it("a pushed stream with one flipped data byte is stopped by the server's verification, not by btrfs receive", async () => {
    // The client does not verify a stream bound for an SSH store (verifiesReceived):
    // the server does, ahead of everything else, so one parse serves both.
    const srcDir = join(local.mnt, 'corrupt-src');
    await mkdir(srcDir);
    await snapshot(vol, join(srcDir, 'x'));
    const sent = await execa('btrfs', ['send', '-q', join(srcDir, 'x')], { encoding: 'buffer' });
    const stream = Buffer.from(sent.stdout);
    const { bad } = flipDataByte(stream);
    const dir = join(remote.mnt, 'corrupt');
    await mkdir(dir);
    const result = await sync(sendingBytes(localStore(srcDir), bad), sshStore(dir)).then(
      () => undefined,
      (e: unknown) => e,
    );
    const remoteErr = findCause(result, RemoteOperationError);
    const corrupt =
      remoteErr?.remoteCode === 'STREAM_CORRUPT' || findCause(result, StreamCorruptError);
    assert.ok(corrupt, `our own verification stopped it, got: ${String(result)}`);
    assert.doesNotMatch(
      String(result),
      /crc32 mismatch/i,
      'btrfs receive never saw the bad command',
    );
    assert.equal((await snapshotsIn(dir)).has('x'), false, 'nothing under the final name');
    // The same bytes unflipped go through: the failure was the flipped byte.
    const done = await sync(sendingBytes(localStore(srcDir), stream), sshStore(dir));
    assert.equal(done.transferred.length, 1);
    assert.equal((await snapshotsIn(dir)).has('x'), true);
  });

  it('an a server refuses to delete; the snapshot stays', async () => {
    const store = sshStore(join(remote.mnt, 'backup'), { mode: 'a' });
    const view = await store.view('dest');
    const victim = view.volumes.find((v) => v.path === 's0')!;
    await assert.rejects(store.deleteVolume(victim), (err: unknown) => {
      assert.ok(err instanceof RemoteOperationError);
      assert.equal(err.remoteCode, 'MODE');
      assert.match(err.message, /delete refused/);
      return true;
    });
    assert.ok((await snapshotsIn(join(remote.mnt, 'backup'))).has('s0'));
  });

  it('refuses paths outside the root (.., absolute, symlinks out); the remote is unchanged', async () => {
    const root = join(remote.mnt, 'backup');
    await symlink(join(local.mnt, 'snaps'), join(root, 'escape'));
    await symlink(remote.mnt, join(root, 'up'));
    const store = sshStore(root, { mode: 'w' });
    const view = await store.view('dest');
    const s0 = view.volumes.find((v) => v.path === 's0')!;
    const before = await allSubvolumes(remote.mnt);
    const refused = async (p: Promise<unknown>, code: string, re: RegExp) =>
      assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof RemoteOperationError, String(err));
        assert.equal(err.remoteCode, code, err.message);
        assert.match(err.message, re);
        return true;
      });
    await refused(
      store.deleteVolume({ ...s0, path: '../backup/s0' }),
      'PATH',
      /leave the served directory/,
    );
    await refused(store.deleteVolume({ ...s0, path: '/etc' }), 'PATH', /absolute path/);
    await refused(store.deleteVolume({ ...s0, path: 'up/backup/s0' }), 'PATH', /up is a symlink/);
    await refused(store.measure({ ...s0, path: 'escape/s0' }, null), 'PATH', /escape is a symlink/);
    // A snapshot pushed into a symlinked directory would land outside the root.
    await assert.rejects(
      store.receive({ uuid: '0bad0000-0000-4000-8000-000000000000', path: 'up/evil' }, null),
      (err: unknown) => err instanceof RemoteOperationError && err.remoteCode === 'PATH',
    );
    assert.deepEqual(await allSubvolumes(remote.mnt), before);
  });

  it(
    'a dropped connection mid-push leaves only a .part on the remote; the rerun completes',
    { timeout: 180_000 },
    async () => {
      const big = await subvolume(join(local.mnt, 'bigvol'));
      await makeTree(big, 0, { bigMiB: 160, xattrs: false });
      await mkdir(join(local.mnt, 'bigsnaps'));
      await snapshot(big, join(local.mnt, 'bigsnaps', 'big0'));
      const destDir = join(remote.mnt, 'killed');
      await mkdir(destDir);
      let killed = false;
      await assert.rejects(
        sync(localStore(join(local.mnt, 'bigsnaps')), sshStore(destDir, { mode: 'a' }), {
          onProgress: (_t, p) => {
            if (!killed && p.bytes > 16 << 20) {
              killed = true;
              // As a network failure would: the sshd processes serving this connection die.
              for (const pid of sshd.sessionPids()) process.kill(pid, 'SIGKILL');
            }
          },
        }),
      );
      assert.ok(killed, 'the connection was killed mid-transfer');
      await waitUntil(
        'the remote server has cleaned up',
        () => pidsWithCommandLine(destDir).length === 0,
      );
      assert.deepEqual(
        [...(await snapshotsIn(destDir)).keys()],
        [],
        'no complete-looking snapshot',
      );
      const left = await allSubvolumes(destDir);
      assert.ok(left.length > 0, 'the interrupted receive left its .part');
      assert.ok(
        left.every((s) => s.startsWith('big0.part')),
        left.join(', '),
      );
      const rerun = await sync(
        localStore(join(local.mnt, 'bigsnaps')),
        sshStore(destDir, { mode: 'a' }),
      );
      assert.equal(rerun.transferred.length, 1);
      await assertSameTree(join(local.mnt, 'bigsnaps', 'big0'), join(destDir, 'big0'));
      const show = await subvolumeShow(join(destDir, 'big0'));
      assert.equal(
        show.receivedUuid,
        (await subvolumeShow(join(local.mnt, 'bigsnaps', 'big0'))).uuid,
      );
    },
  );

  it(
    'a dropped connection mid-pull leaves only a .part locally; the rerun completes',
    { timeout: 180_000 },
    async () => {
      const remoteDir = join(remote.mnt, 'killed');
      const pulled = join(local.mnt, 'pulled-big');
      await mkdir(pulled);
      const source = sshStore(remoteDir, { mode: 'r' });
      let dropped = false;
      await assert.rejects(
        sync(source, localStore(pulled), {
          onProgress: (_t, p) => {
            if (!dropped && p.bytes > 16 << 20) {
              dropped = true;
              void source.disconnect();
            }
          },
        }),
      );
      assert.ok(dropped);
      await waitUntil(
        'the remote sender is gone',
        () => pidsWithCommandLine(`--mode r ${remoteDir}/`).length === 0,
      );
      assert.deepEqual([...(await snapshotsIn(pulled)).keys()], []);
      const left = await allSubvolumes(pulled);
      assert.ok(left.length > 0, 'the interrupted receive left its .part');
      assert.ok(
        left.every((s) => s.startsWith('big0.part')),
        left.join(', '),
      );
      const rerun = await sync(sshStore(remoteDir, { mode: 'r' }), localStore(pulled));
      assert.equal(rerun.transferred.length, 1);
      await assertSameTree(join(remoteDir, 'big0'), join(pulled, 'big0'));
    },
  );
});
