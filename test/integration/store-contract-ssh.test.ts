/**
 * The store contract against the SSH store, through OpenSSH sshd on
 * 127.0.0.1 to this checkout's `buttersink --server` on a loop-mounted btrfs.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { execa } from 'execa';
import { setLogger } from '../../src/log.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { SshLocation } from '../../src/stores/uri.js';
import { btrfsSnapshots } from '../contract/btrfs-snapshots.js';
import type { BtrfsSnapshots } from '../contract/btrfs-snapshots.js';
import { describeStoreContract } from '../contract/store-contract.js';
import { createBtrfs } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true });

let sshd: Sshd | undefined;
let src: BtrfsSnapshots | undefined;
let remote: BtrfsFs | undefined;
let restoreLogger: (() => void) | undefined;
let n = 0;
if (!skip) {
  before(async () => {
    const prev = setLogger({ warn: () => undefined, debug: () => undefined });
    restoreLogger = () => setLogger(prev);
    sshd = await startSshd();
    src = await btrfsSnapshots();
    remote = await createBtrfs({ size: 512 << 20, label: 'contract remote' });
  });
  after(async () => {
    await src?.fs.cleanup();
    await remote?.cleanup();
    await sshd?.stop();
    restoreLogger?.();
  });
}

async function removeSubvolumes(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if ((await stat(join(dir, name))).ino === 256) {
      await execa('btrfs', ['property', 'set', '-f', join(dir, name), 'ro', 'false']);
      await execa('btrfs', ['subvolume', 'delete', join(dir, name)]);
    }
  }
}

const open = (dir: string) =>
  new SshStore(parseLocation(`ssh://${sshd!.alias}${dir}/`) as SshLocation, {
    home: sshd!.home,
    agent: false,
    remoteCommand: sshd!.remoteCommand,
  });

describeStoreContract(
  'ssh (OpenSSH sshd)',
  async () => {
    // The server refuses a second subvolume with a UUID already on the
    // filesystem: the previous case's snapshots go first.
    if (n > 0) await removeSubvolumes(join(remote!.mnt, `case-${n - 1}`));
    const dir = join(remote!.mnt, `case-${n++}`);
    await mkdir(dir);
    const other = open(dir);
    return {
      store: open(dir),
      full: src!.full,
      incremental: src!.incremental,
      expectedContent: (s) => src!.digest(s),
      storedContent: (s) => treeDigest(join(dir, s.volume.path)),
      other: () => other,
    };
  },
  { skip },
);
