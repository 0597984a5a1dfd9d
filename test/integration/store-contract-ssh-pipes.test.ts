/**
 * The store contract against the SSH store with no sshd: its connection is
 * injected (`SshStoreOptions.connect`), and every exec channel runs this
 * checkout's server (`serveSession`) in-process over a pair of streams, on a
 * loop-mounted btrfs. Needs root for btrfs, not sshd.
 */
import { Duplex, PassThrough } from 'node:stream';
import { after, before } from 'node:test';
import { setLogger } from '../../src/log.js';
import { serveSession } from '../../src/server/serve-session.js';
import type { SshConnection } from '../../src/stores/ssh/ssh-connection.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { SshLocation } from '../../src/stores/uri.js';
import { isServerMode } from '../../src/wire/protocol.js';
import { btrfsSnapshots } from '../contract/btrfs-snapshots.js';
import type { BtrfsSnapshots } from '../contract/btrfs-snapshots.js';
import { remoteBtrfsCases } from '../contract/remote-btrfs-cases.js';
import { describeStoreContract } from '../contract/store-contract.js';
import { createBtrfs } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

/**
 * An exec channel as ssh2 gives one (a Duplex with `stderr`, `exit` then
 * `close` events, `close()`), wired to a server session in this process.
 */
class PipeChannel extends Duplex {
  readonly stderr = new PassThrough();
  readonly #toServer = new PassThrough();
  readonly #stop = new AbortController();

  constructor(command: string) {
    super({ emitClose: false });
    const mode = / --mode (\w)/.exec(command)?.[1];
    const root = command.split(' ').pop()!.replace(/\/$/, '');
    if (!isServerMode(mode)) throw new Error(`unexpected remote command ${command}`);
    const toClient = new PassThrough();
    toClient.on('data', (c: Buffer) => {
      if (!this.push(c)) toClient.pause();
    });
    toClient.on('end', () => this.push(null));
    this.on('drain', () => toClient.resume());
    void serveSession({
      input: this.#toServer,
      output: toClient,
      mode,
      root,
      signal: this.#stop.signal,
    }).then((code) => {
      this.emit('exit', code);
      this.stderr.end();
      setImmediate(() => this.emit('close'));
    });
  }

  override _read(): void {
    this.emit('drain');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#toServer.write(chunk)) cb();
    else this.#toServer.once('drain', () => cb());
  }

  override _final(cb: () => void): void {
    this.#toServer.end();
    cb();
  }

  /** As ssh2's: the remote sees its input end and the session is cancelled. */
  close(): void {
    this.#stop.abort(new Error('channel closed'));
    this.#toServer.end();
  }
}

/** A connection whose exec channels are {@link PipeChannel}s. */
function pipeConnection(): SshConnection {
  const channels: PipeChannel[] = [];
  let closed = false;
  const conn = {
    get closed() {
      return closed;
    },
    dropReason: undefined,
    exec: async (command: string) => {
      const channel = new PipeChannel(command);
      channels.push(channel);
      return channel;
    },
    destroy: () => channels.forEach((c) => c.close()),
    close: async () => {
      closed = true;
      channels.forEach((c) => c.close());
    },
  };
  return conn as unknown as SshConnection;
}

let src: BtrfsSnapshots | undefined;
let remote: BtrfsFs | undefined;
let restoreLogger: (() => void) | undefined;
if (!skip) {
  before(async () => {
    const prev = setLogger({ warn: () => undefined, debug: () => undefined });
    restoreLogger = () => setLogger(prev);
    src = await btrfsSnapshots();
    remote = await createBtrfs({ size: 512 << 20, label: 'contract pipes' });
  });
  after(async () => {
    await src?.fs.cleanup();
    await remote?.cleanup();
    restoreLogger?.();
  });
}

const open = (dir: string) =>
  new SshStore(parseLocation(`ssh://in-process${dir}/`) as SshLocation, {
    connect: async () => pipeConnection(),
  });

describeStoreContract(
  'ssh (server in-process over pipes)',
  remoteBtrfsCases(open, () => ({ remote: remote!, src: src! })),
  { skip },
);
