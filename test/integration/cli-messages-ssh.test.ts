/**
 * What users see (issue 13), SSH: a missing remote directory and a remote
 * command that is not installed give one line naming the fix; a pull says
 * "received". Through the CLI, against a real sshd on 127.0.0.1 and real
 * loop-mounted btrfs.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true });

/** Asserts `stderr` is exactly one line, without a stack trace. */
function oneLine(stderr: string): void {
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

describe('CLI messages: SSH', { skip }, () => {
  let sshd: Sshd;
  let fs: BtrfsFs;
  let snaps: string;
  const ssh = (args: string[], remoteCommand = sshd.remoteCommand) =>
    runCli(['--remote-command', remoteCommand, ...args], 'buttersink', {
      env: { HOME: sshd.home, SSH_AUTH_SOCK: '' },
    });

  before(async () => {
    sshd = await startSshd();
    fs = await createBtrfs({ size: 512 << 20 });
    const live = await subvolume(join(fs.mnt, 'live'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(snaps);
    for (let step = 0; step < 2; step++) {
      await makeTree(live, step, { bigMiB: 1 });
      await snapshot(live, join(snaps, `s${step + 1}`));
    }
  });
  after(async () => {
    await fs?.cleanup();
    await sshd?.stop();
  });

  it('a missing remote directory: "ssh://host/path: no such directory", exit 2 as a local one', async () => {
    const local = await runCli(['/nonexistent/dir/']);
    assert.equal(local.exitCode, 2, local.stderr);
    const r = await ssh([`ssh://${sshd.alias}/nonexistent/dir/`]);
    assert.equal(r.exitCode, local.exitCode, r.stderr);
    assert.match(r.stderr, /^buttersink: ssh:\/\/bstest\/nonexistent\/dir: no such directory$/);
    assert.doesNotMatch(r.stderr, /ENOENT|realpath/);
    oneLine(r.stderr);
  });

  it('a remote snapshot written with a trailing slash is refused, naming the fix', async () => {
    const dst = join(fs.mnt, 'slash');
    await mkdir(dst);
    const r = await ssh([`ssh://${sshd.alias}${snaps}/s1/`, `${dst}/`]);
    assert.notEqual(r.exitCode, 0, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: ssh:\/\/bstest\/.*\/snaps\/s1\/: a read-only snapshot, not a directory of snapshots; drop the trailing '\/'/,
    );
    oneLine(r.stderr);
    assert.deepEqual(await readdir(dst), []);
  });

  it('exit 127 from the remote command suggests --remote-command', async () => {
    const r = await ssh([`ssh://${sshd.alias}${snaps}/`], '/nonexistent/buttersink');
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, /\(exit 127: command not found\)/);
    assert.match(
      r.stderr,
      /; give the remote buttersink's command line with --remote-command \(default 'sudo buttersink'\)$/,
    );
    oneLine(r.stderr);
  });

  it('a pull over SSH says "received" and ends with the summary line', async () => {
    const dst = join(fs.mnt, 'pulled');
    await mkdir(dst);
    const r = await ssh(['-q', `ssh://${sshd.alias}${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^received s1 \(full\): /m);
    assert.match(r.stdout, /^received s2 from s1: /m);
    assert.match(
      r.stdout.trim().split('\n').at(-1) ?? '',
      /^2 snapshot\(s\), \d+\.\d (KiB|MiB) transferred in \d+\.\d s$/,
    );
    assert.deepEqual((await readdir(dst)).sort(), ['s1', 's2']);
  });
});
