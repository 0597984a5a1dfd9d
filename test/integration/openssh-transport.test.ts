/**
 * The OpenSSH client transport (`--ssh-program`), against a real sshd on
 * 127.0.0.1 and real loop-mounted btrfs: a CLI push and pull, host key
 * refusal before anything is written (and accept-new when asked), the remote
 * exit 127 hint, and a killed `ssh` mid-push leaving only a `.part`. The CLI
 * runs with a HOME holding no keys and no agent, so only the OpenSSH client
 * (whose config names the test key) can log in.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { listSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { setLogger } from '../../src/log.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import type { Store } from '../../src/stores/store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, SshLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { openSshProgram } from '../fixtures/openssh-client.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { pidsWithCommandLine, startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { waitFor } from '../fixtures/wait-for.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true });

/** Read-only subvolumes below `dir`: name → received UUID. */
async function received(dir: string): Promise<Map<string, string | undefined>> {
  const subs = await listSubvolumes(dir);
  return new Map(subs.filter((s) => s.readOnly).map((s) => [s.path, s.receivedUuid]));
}

/** Asserts `stderr` is one line, without a stack trace. */
function oneLine(stderr: string): void {
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

describe('OpenSSH client transport (--ssh-program)', { skip }, () => {
  let sshd: Sshd;
  let local: BtrfsFs;
  let remote: BtrfsFs;
  let pullFs: BtrfsFs | undefined;
  let snaps: string;
  let program: string;
  const stores: Store[] = [];
  let restoreLogger: (() => void) | undefined;
  /** The CLI with no usable key for the built-in client: only ssh (its -F config) can log in. */
  const cli = (args: string[], ssh = program, remoteCommand = sshd.remoteCommand) =>
    runCli(['--ssh-program', ssh, '--remote-command', remoteCommand, ...args], 'buttersink', {
      env: { HOME: join(sshd.dir, 'no-keys'), SSH_AUTH_SOCK: '' },
    });

  before(async () => {
    const prev = setLogger({ warn: () => undefined, debug: () => undefined });
    restoreLogger = () => setLogger(prev);
    sshd = await startSshd();
    await mkdir(join(sshd.dir, 'no-keys'));
    program = (await openSshProgram(sshd)).program;
    local = await createBtrfs({ size: 768 << 20, label: 'openssh local' });
    remote = await createBtrfs({ size: 768 << 20, label: 'openssh remote' });
    const live = await subvolume(join(local.mnt, 'live'));
    snaps = join(local.mnt, 'snaps');
    await mkdir(snaps);
    for (let step = 0; step < 2; step++) {
      await makeTree(live, step, { bigMiB: 4 });
      await snapshot(live, join(snaps, `s${step + 1}`));
    }
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    restoreLogger?.();
    await sshd?.stop();
    await pullFs?.cleanup();
    await remote?.cleanup();
    await local?.cleanup();
  });

  it('pushes and pulls through the CLI with identical content and received UUIDs', async () => {
    const dest = join(remote.mnt, 'pushed');
    await mkdir(dest);
    const push = await cli(['-q', `${snaps}/`, `ssh://${sshd.alias}${dest}/`]);
    assert.equal(push.exitCode, 0, push.stderr);
    const src = await listSubvolumes(snaps);
    const got = await received(dest);
    assert.deepEqual([...got.keys()].sort(), ['s1', 's2']);
    for (const s of src) assert.equal(got.get(s.path), s.uuid, `${s.path} keeps its UUID`);
    // A filesystem of its own: the other two already hold subvolumes with these UUIDs.
    pullFs = await createBtrfs({ size: 256 << 20, label: 'openssh pulled' });
    const pulled = join(pullFs.mnt, 'pulled');
    await mkdir(pulled);
    const pull = await cli(['-q', `ssh://${sshd.alias}${dest}/`, `${pulled}/`]);
    assert.equal(pull.exitCode, 0, pull.stderr);
    assert.deepEqual((await readdir(pulled)).sort(), ['s1', 's2']);
    for (const name of ['s1', 's2']) {
      const diff = await execa(
        'diff',
        ['-r', '--no-dereference', join(snaps, name), join(pulled, name)],
        {
          reject: false,
        },
      );
      assert.equal(diff.exitCode, 0, diff.stdout);
    }
  });

  it('an unknown host key: one line with the hint, nothing written; accept-new adds it', async () => {
    const knownHosts = join(sshd.dir, 'empty_known_hosts');
    await writeFile(knownHosts, '');
    const strict = (await openSshProgram(sshd, { knownHosts })).program;
    const dest = join(remote.mnt, 'unknown-host');
    await mkdir(dest);
    const r = await cli(['-q', `${snaps}/`, `ssh://${sshd.alias}${dest}/`], strict);
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: ssh:\/\/bstest: ssh refused the host key: the host is not in known_hosts \(Host key verification failed\.\); check its fingerprint .*--accept-new-host-key/,
    );
    oneLine(r.stderr);
    assert.deepEqual(await readdir(dest), [], 'nothing written');
    assert.equal(await readFile(knownHosts, 'utf8'), '', 'no key added without accept-new');
    // A listing is enough to connect (the snapshots above are on this filesystem already).
    const accepted = await cli(['--accept-new-host-key', `ssh://${sshd.alias}${dest}/`], strict);
    assert.equal(accepted.exitCode, 0, accepted.stderr);
    assert.match(await readFile(knownHosts, 'utf8'), /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 /);
  });

  it('exit 127 from the remote command still suggests --remote-command', async () => {
    const r = await cli([`ssh://${sshd.alias}${snaps}/`], program, '/nonexistent/buttersink');
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, /\(exit 127: command not found\)/);
    assert.match(r.stderr, /; give the remote buttersink's command line with --remote-command/);
    oneLine(r.stderr);
  });

  it('a program that does not exist: one line naming --ssh-program', async () => {
    const r = await cli([`ssh://${sshd.alias}${snaps}/`], '/nonexistent/ssh');
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, /cannot run the ssh program '\/nonexistent\/ssh'.*check --ssh-program$/);
    oneLine(r.stderr);
  });

  it(
    'ssh killed mid-push: the push fails, only a .part is left, the rerun completes',
    { timeout: 180_000 },
    async () => {
      const { program: killable, configFile } = await openSshProgram(sshd);
      const big = await subvolume(join(local.mnt, 'bigvol'));
      await makeTree(big, 0, { bigMiB: 160, xattrs: false });
      await mkdir(join(local.mnt, 'bigsnaps'));
      await snapshot(big, join(local.mnt, 'bigsnaps', 'big0'));
      const destDir = join(remote.mnt, 'killed');
      await mkdir(destDir);
      const open = (mode: 'a') => {
        const s = new SshStore(parseLocation(`ssh://${sshd.alias}${destDir}/`) as SshLocation, {
          sshProgram: killable,
          remoteCommand: sshd.remoteCommand,
          mode,
        });
        stores.push(s);
        return s;
      };
      const source = () => {
        const s = new BtrfsStore(parseLocation(`${local.mnt}/bigsnaps/`) as BtrfsLocation);
        stores.push(s);
        return s;
      };
      let killed: number[] = [];
      await assert.rejects(
        sync(source(), open('a'), {
          onProgress: (_t, p) => {
            if (killed.length === 0 && p.bytes > 16 << 20) {
              // Only the local ssh processes name this config file.
              killed = pidsWithCommandLine(configFile);
              for (const pid of killed) process.kill(pid, 'SIGKILL');
            }
          },
        }),
        // Which side notices first is a race: the read side names the killed ssh, the
        // write side that ssh stopped reading. Either way one line about the connection.
        /ssh:\/\/bstest: connection (lost during push \(the local ssh process was killed by SIGKILL\)|closed: ssh stopped reading its input)/,
      );
      assert.ok(killed.length > 0, 'ssh was killed mid-transfer');
      await waitFor(() => pidsWithCommandLine(`--mode a ${destDir}/`).length === 0, {
        what: 'the remote server to clean up',
        everyMs: 100,
      });
      assert.deepEqual([...(await received(destDir)).keys()], [], 'no complete-looking snapshot');
      const left = (await listSubvolumes(destDir)).map((s) => s.path);
      assert.ok(left.length > 0, 'the interrupted receive left its .part');
      assert.ok(
        left.every((s) => s.startsWith('big0.part')),
        left.join(', '),
      );
      const rerun = await sync(source(), open('a'));
      assert.equal(rerun.transferred.length, 1);
      const show = await subvolumeShow(join(destDir, 'big0'));
      assert.equal(
        show.receivedUuid,
        (await subvolumeShow(join(local.mnt, 'bigsnaps', 'big0'))).uuid,
      );
    },
  );
});
