/**
 * The store contract against the SSH store with the OpenSSH client transport
 * (`sshProgram`, `--ssh-program`): the system's `ssh`, through OpenSSH sshd on
 * 127.0.0.1, to this checkout's `buttersink --server` on a loop-mounted btrfs.
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
import { openSshProgram } from '../fixtures/openssh-client.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true });

let sshd: Sshd | undefined;
let program: string | undefined;
let src: BtrfsSnapshots | undefined;
let remote: BtrfsFs | undefined;
let restoreLogger: (() => void) | undefined;
if (!skip) {
  before(async () => {
    const prev = setLogger({ warn: () => undefined, debug: () => undefined });
    restoreLogger = () => setLogger(prev);
    sshd = await startSshd();
    program = (await openSshProgram(sshd)).program;
    src = await btrfsSnapshots();
    remote = await createBtrfs({ size: 512 << 20, label: 'contract openssh' });
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
    sshProgram: program!,
    remoteCommand: sshd!.remoteCommand,
  });

describeStoreContract(
  'ssh (OpenSSH client transport, OpenSSH sshd)',
  remoteBtrfsCases(open, () => ({ remote: remote!, src: src! })),
  { skip },
);
