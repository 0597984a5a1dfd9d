/**
 * The store contract against the SSH store, through OpenSSH sshd on
 * 127.0.0.1 to this checkout's `buttersink --server` on a loop-mounted btrfs.
 */
import { after, before } from 'node:test';
import { setLogger } from '../../src/log.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { SshLocation } from '../../src/stores/uri.js';
import { btrfsSnapshots } from '../contract/btrfs-snapshots.js';
import type { BtrfsSnapshots } from '../contract/btrfs-snapshots.js';
import { remoteBtrfsCases } from '../contract/remote-btrfs-cases.js';
import { describeStoreContract } from '../contract/store-contract.js';
import { createBtrfs } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true });

let sshd: Sshd | undefined;
let src: BtrfsSnapshots | undefined;
let remote: BtrfsFs | undefined;
let restoreLogger: (() => void) | undefined;
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

const open = (dir: string) =>
  new SshStore(parseLocation(`ssh://${sshd!.alias}${dir}/`) as SshLocation, {
    home: sshd!.home,
    agent: false,
    remoteCommand: sshd!.remoteCommand,
  });

describeStoreContract(
  'ssh (OpenSSH sshd)',
  remoteBtrfsCases(open, () => ({ remote: remote!, src: src! })),
  { skip },
);
