/**
 * The SSH store: a directory of btrfs snapshots on another host, served there
 * by `<remote command> --server --mode r|a|w <dir>/` (default remote command
 * `sudo buttersink`, so an administrator can allow one mode per sudoers line).
 *
 * Transports: the built-in ssh2 client, or the system's OpenSSH client with
 * `sshProgram` (`--ssh-program`; one `ssh` process per channel, see openssh.ts).
 *
 * Channels: one SSH connection per store, opened on first use. Listing,
 * measuring and deleting go through one long-lived control session (one exec
 * channel, requests one at a time); every send or receive gets an exec
 * channel of its own, closed when the stream is done, so a transfer never
 * waits behind a control request and a broken transfer takes only its own
 * channel down. The remote exit status of every channel is checked.
 *
 * Transfers: to this store, the local stages (send, uuid-rewrite, verify,
 * progress) feed {@link frameSink}; the remote verifies again, checks the
 * stream only names snapshots it holds, and receives under `*.part`, renamed
 * after the commit. From this store, the remote runs `btrfs send` and the
 * local side verifies and receives. Measuring runs the `--no-data` size probe
 * on the remote and moves only the figure.
 *
 * Time limits: SSH keepalives (`keepaliveInterval`, `keepaliveCountMax`) drop
 * a connection whose host or network went away; the idle limit
 * (`idleTimeoutMs`, `--timeout`) fails a session whose remote stopped sending
 * what it owes or stopped reading what we send (see {@link RemoteSession}).
 */
import { StoreError, describeError } from '../../errors.js';
import { debug } from '../../log.js';
import type { DiffOffer, StoreView } from '../../planner/plan-input.js';
import type { Volume } from '../../planner/volume.js';
import { frameSink, frameSource } from '../../wire/frame-stages.js';
import { ProtocolError } from '../../wire/frame.js';
import { LOCK_PROTOCOL_VERSION, isServerMode } from '../../wire/protocol.js';
import type { Request, ServerMode, VolumeRef } from '../../wire/protocol.js';
import {
  parseListPartialsResult,
  parseListResult,
  parseMeasureResult,
  parsePreflightResult,
  parseReceiveResult,
} from '../../wire/responses.js';
import type { SinkStage, SourceStage, TransformStage } from '../../streams/stage.js';
import type { StreamSupport } from '../../btrfs/send-capabilities.js';
import { streamVersionGate } from '../../stages/stream-version-gate.js';
import { forgettingLock } from '../lock.js';
import type { LockOptions, StoreLock } from '../lock.js';
import type {
  Partial,
  PreflightOptions,
  PreflightProblem,
  PreflightTransfer,
  ReceiveStages,
  SendOptions,
  Store,
  StoreOpOptions,
  StoreRole,
} from '../store.js';
import { holdRemoteLock, unheldLock } from './ssh-lock.js';
import type { RemoteRunLock } from './ssh-lock.js';
import { formatLocation } from '../uri.js';
import type { SshLocation } from '../uri.js';
import { DEFAULT_SSH_IDLE_MS, RemoteSession } from './remote-session.js';
import { SshConnection } from './ssh-connection.js';
import type { SshConnectOptions } from './ssh-connection.js';
import { OpenSshTransport, splitCommandLine } from './openssh.js';
import type { SshTransport } from './transport.js';

/** Options of {@link SshStore}. */
export interface SshStoreOptions extends Pick<
  SshConnectOptions,
  | 'home'
  | 'configFile'
  | 'knownHostsFiles'
  | 'identityFiles'
  | 'acceptNewHostKey'
  | 'agent'
  | 'readyTimeout'
  | 'keepaliveInterval'
  | 'keepaliveCountMax'
> {
  /**
   * Mode the remote server is started in: `r` lists, measures, sends; `a` also
   * receives; `w` also deletes. Use the least the job needs. Default `w`.
   */
  mode?: ServerMode;
  /** Remote command line that starts buttersink, before `--server …`. Default `sudo buttersink`. */
  remoteCommand?: string;
  /** Send stream version the remote `btrfs send` uses (`--proto`). Default: the remote's default. */
  proto?: 1 | 2;
  /**
   * Idle limit, ms (`--timeout`): a session fails when the remote sends nothing it
   * owes (an answer, the next bytes of a send) or reads nothing we write for this
   * long. Default {@link DEFAULT_SSH_IDLE_MS} (300 s); 0: no limit.
   */
  idleTimeoutMs?: number;
  /**
   * The system's OpenSSH client as the transport (`--ssh-program`): a command
   * line such as `ssh` or `ssh -F ~/.ssh/backup_config`, run once per channel as
   * `<program> … [-l user] [-p port] -- host '<remote command>'` (see openssh.ts).
   * Of the connection options it uses `identityFiles` (`-i`), `configFile`
   * (`-F`), `knownHostsFiles` and `acceptNewHostKey`; the rest is ssh's own
   * config. Default: none, the built-in ssh2 transport.
   */
  sshProgram?: string;
  /**
   * Opens the transport the store runs its remote sessions on (the seam for
   * tests: the contract suite serves `serveSession` in-process over pipes).
   * Default: the OpenSSH client with `sshProgram`, else
   * {@link SshConnection.connect} to the location's host with these options.
   */
  connect?: (signal?: AbortSignal) => Promise<SshTransport>;
}

/** Quotes `s` for a POSIX shell (the remote login shell runs the exec command). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function ref(v: Volume): VolumeRef {
  return { uuid: v.uuid, path: v.path };
}

/** Snapshots on a remote host, reached over SSH. */
export class SshStore implements Store {
  readonly kind = 'ssh' as const;
  readonly location: SshLocation;
  readonly mode: ServerMode;
  readonly #opts: SshStoreOptions;
  #connection: Promise<SshTransport> | undefined;
  #control: Promise<RemoteSession> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The run lock this store holds (see `ssh-lock.ts`), if any. */
  #runLock: RemoteRunLock | undefined;

  /** Throws StoreError for an invalid mode. Connects lazily, on the first operation. */
  constructor(location: SshLocation, opts: SshStoreOptions = {}) {
    const mode = opts.mode ?? 'w';
    if (!isServerMode(mode))
      throw new StoreError(`ssh store: mode must be r, a or w, not ${String(mode)}`);
    if (opts.remoteCommand !== undefined && opts.remoteCommand.trim() === '') {
      throw new StoreError('ssh store: remoteCommand must not be empty');
    }
    if (opts.sshProgram !== undefined) splitCommandLine(opts.sshProgram);
    const idle = opts.idleTimeoutMs;
    if (idle !== undefined && !(Number.isFinite(idle) && idle >= 0 && idle <= 2 ** 31 - 1)) {
      throw new StoreError(`ssh store: idleTimeoutMs must be a number of ms from 0, not ${idle}`);
    }
    this.location = location;
    this.mode = mode;
    this.#opts = opts;
  }

  /** The command line run on the remote host for each channel. */
  get remoteCommand(): string {
    const dir = this.location.dir === '/' ? '/' : `${this.location.dir}/`;
    const proto = this.#opts.proto ? ` --proto ${this.#opts.proto}` : '';
    return `${this.#opts.remoteCommand ?? 'sudo buttersink'} --server --mode ${this.mode}${proto} ${shellQuote(dir)}`;
  }

  get #label(): string {
    return `ssh://${this.location.user ? `${this.location.user}@` : ''}${this.location.host}${this.location.port ? `:${this.location.port}` : ''}`;
  }

  #connect(signal?: AbortSignal): Promise<SshTransport> {
    if (this.#closed) return Promise.reject(new StoreError(`${this.#label}: store is closed`));
    if (!this.#connection) {
      const o = this.#opts;
      const p = o.connect
        ? o.connect(signal)
        : o.sshProgram !== undefined
          ? this.#openSsh(o.sshProgram)
          : this.#sshConnect(signal);
      this.#connection = p;
      p.catch(() => {
        if (this.#connection === p) this.#connection = undefined;
      });
    }
    return this.#connection.then((c) => {
      if (!c.closed) return c;
      this.#connection = undefined;
      this.#control = undefined;
      return this.#connect(signal);
    });
  }

  /** The OpenSSH client transport to the location's host (connects per channel). */
  async #openSsh(program: string): Promise<SshTransport> {
    return new OpenSshTransport(program, this.#endpoint(), this.#label);
  }

  /** Host, user, port, keys and host-key rules: what both transports take. */
  #endpoint() {
    const o = this.#opts;
    const l = this.location;
    return {
      host: l.host,
      ...(l.user !== undefined ? { user: l.user } : {}),
      ...(l.port !== undefined ? { port: l.port } : {}),
      ...(o.identityFiles !== undefined ? { identityFiles: o.identityFiles } : {}),
      ...(o.configFile !== undefined ? { configFile: o.configFile } : {}),
      ...(o.knownHostsFiles !== undefined ? { knownHostsFiles: o.knownHostsFiles } : {}),
      ...(o.acceptNewHostKey !== undefined ? { acceptNewHostKey: o.acceptNewHostKey } : {}),
    };
  }

  /** A new SSH connection to the location's host. */
  #sshConnect(signal?: AbortSignal): Promise<SshConnection> {
    const o = this.#opts;
    return SshConnection.connect({
      ...this.#endpoint(),
      ...(o.home !== undefined ? { home: o.home } : {}),
      ...(o.agent !== undefined ? { agent: o.agent } : {}),
      ...(o.readyTimeout !== undefined ? { readyTimeout: o.readyTimeout } : {}),
      ...(o.keepaliveInterval !== undefined ? { keepaliveInterval: o.keepaliveInterval } : {}),
      ...(o.keepaliveCountMax !== undefined ? { keepaliveCountMax: o.keepaliveCountMax } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  async #openSession(signal?: AbortSignal): Promise<RemoteSession> {
    const conn = await this.#connect(signal);
    signal?.throwIfAborted();
    return RemoteSession.open(conn, this.remoteCommand, this.#label, {
      idleMs: this.#opts.idleTimeoutMs ?? DEFAULT_SSH_IDLE_MS,
    });
  }

  /** The control session, opened when there is none. */
  #controlSession(signal?: AbortSignal): Promise<RemoteSession> {
    if (!this.#control) {
      const p = this.#openSession(signal);
      this.#control = p;
      p.catch(() => {
        if (this.#control === p) this.#control = undefined;
      });
    }
    return this.#control;
  }

  /**
   * What the remote can do with send stream protocol 2, as its hello reported;
   * a server too old to report it counts as protocol 1 both ways.
   */
  async streamSupport(opts: StoreOpOptions = {}): Promise<StreamSupport> {
    const reported = (await this.#controlSession(opts.signal)).streams;
    if (reported) return reported;
    const why = `the remote buttersink does not report send stream protocol 2 support (an older version); install the same version on both hosts`;
    return { compressedSend: false, sendWhy: why, receiveVersion: 1, receiveWhy: why };
  }

  /** The protocol version the control session speaks. */
  async #controlVersion(signal?: AbortSignal): Promise<number> {
    return (await this.#controlSession(signal)).version;
  }

  /** Runs `request` on the control session, one at a time; a broken session is replaced next time. */
  #request(request: Request, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const run = async () => {
      signal?.throwIfAborted();
      const session = await this.#controlSession(signal);
      try {
        return await session.request(request);
      } catch (err) {
        if (!(err instanceof Error && 'remoteCode' in err)) {
          // Not an answer: the session is in an unknown state.
          this.#control = undefined;
          await session.destroy();
        }
        throw err;
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async view(role: StoreRole, opts: StoreOpOptions = {}): Promise<StoreView> {
    const r = parseListResult(await this.#request({ op: 'list', role }, opts.signal), this.#label);
    return {
      kind: 'ssh',
      volumes: r.volumes,
      diffs:
        role === 'source'
          ? r.diffs.map((d) => ({ ...d, store: 'source' as const, atDest: false }))
          : [],
    };
  }

  /**
   * Measured by the server. Whether the size is recorded is the server's
   * mode, not `record`: a server in mode `r` (what a source asks for) records
   * nothing; one in mode `a`/`w` appends to the remote `<snapshot>.bs`.
   */
  async measure(to: Volume, from: Volume | null, opts: StoreOpOptions = {}): Promise<number> {
    const r = await this.#request(
      { op: 'measure', to: ref(to), from: from ? ref(from) : null },
      opts.signal,
    );
    return parseMeasureResult(r, this.#label);
  }

  send(to: Volume, from: Volume | null, opts: SendOptions = {}): SourceStage<number> {
    const signal = opts.signal;
    let session: RemoteSession | undefined;
    return frameSource({
      name: 'ssh-read',
      open: async () => {
        session = await this.#openSession(signal);
        // Only a server that reported it knows the field (older ones refuse unknown fields).
        const compressed = opts.compressedData === true && session.streams?.compressedSend === true;
        await session.send({
          op: 'send',
          to: ref(to),
          from: from ? ref(from) : null,
          ...(compressed ? { compressedData: true } : {}),
        });
        session.endIsLoss = true;
        return session.reader;
      },
      onControl: (message, bytes) => {
        if (session!.handleCommon(message)) return 'continue';
        const m = message as { type?: unknown; bytes?: unknown } | null;
        if (m?.type !== 'end')
          throw new ProtocolError(`${this.#label}: unexpected message during send`);
        if (m.bytes !== bytes) {
          throw new ProtocolError(
            `${this.#label}: remote sent ${bytes} bytes but announced ${String(m.bytes)}`,
          );
        }
        return 'end';
      },
      onEnd: () => session!.finish(),
      onDestroy: () => session?.destroy(),
      ...(signal ? { signal } : {}),
    });
  }

  async receive(
    to: Volume,
    from: Volume | null,
    opts: StoreOpOptions = {},
  ): Promise<ReceiveStages> {
    const signal = opts.signal;
    const session = await this.#openSession(signal);
    const gate = this.#versionGate(session.streams, signal);
    try {
      await session.send({
        op: 'receive',
        to: ref(to),
        from: from ? ref(from) : null,
        ...this.#lockToken(),
      });
      await session.expect('ready');
      // The remote says nothing until its commit: while we send, its silence is not idleness.
      session.answerDue = false;
    } catch (err) {
      await session.destroy();
      throw err;
    }
    let settle!: { resolve: (path: string) => void; reject: (err: unknown) => void };
    const committed = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
    committed.catch(() => undefined);
    const sink: SinkStage<string> = frameSink({
      name: 'ssh-write',
      writer: session.writer,
      writeError: (err) => session.writeFailure(err),
      finish: async (bytes) => {
        await session.writer.json({ type: 'end', bytes }).catch(async (err: Error) => {
          throw await session.writeFailure(err);
        });
        session.answerDue = true;
        const path = await committed;
        await session.finish();
        return path;
      },
      abort: async (err) => {
        debug('ssh receive aborted', { error: describeError(err) });
        // Best effort and never awaited: a dead connection never drains. Closing the
        // channel alone makes the remote cancel (end of input before `end`).
        session.writer.json({ type: 'abort', message: describeError(err) }).catch(() => undefined);
        await session.destroy();
      },
      ...(signal ? { signal } : {}),
    });
    // The remote says nothing until the commit, except to report a failure: watch for it.
    (async () => {
      const m = await session.expect('result');
      settle.resolve(parseReceiveResult(m, to.path));
    })().catch((err: unknown) => {
      settle.reject(err);
      sink.stream.destroy(err as Error);
    });
    // The server verifies every stream it receives before committing it.
    return { transforms: gate, sink, verifies: true };
  }

  /**
   * A gate stopping a stream the remote reported it cannot read (see
   * stream-version-gate.ts), before any byte leaves. An older server reports
   * nothing: its own `btrfs receive` then says what it reads.
   */
  #versionGate(
    streams: StreamSupport | undefined,
    signal?: AbortSignal,
  ): TransformStage<unknown>[] {
    if (!streams || streams.receiveVersion >= 2) return [];
    return [
      streamVersionGate({
        maxVersion: streams.receiveVersion,
        receiver: `btrfs receive at ${this.#label}`,
        ...(streams.receiveWhy ? { why: streams.receiveWhy } : {}),
        ...(signal ? { signal } : {}),
      }),
    ];
  }

  async deleteVolume(volume: Volume, opts: StoreOpOptions = {}): Promise<void> {
    await this.#request({ op: 'delete', volume: ref(volume), ...this.#lockToken() }, opts.signal);
  }

  /** The `lock` field of a request made under this store's run lock. */
  #lockToken(): { lock?: string } {
    const token = this.#runLock?.token;
    return token ? { lock: token } : {};
  }

  /**
   * Takes the remote directory's lock for this run (`<dir>/.buttersink.lock` on
   * the remote host, held by a session of its own; see `ssh-lock.ts`): the
   * run's receives and deletes then work under it. Rejects with a LockedError
   * naming the holder when another run holds it. One lock per store object.
   */
  async lock(opts: LockOptions = {}): Promise<StoreLock> {
    if (this.#runLock)
      throw new StoreError(`${this.#partialPrefix()}: this store already holds its lock`);
    // A read-only (`r`) server writes nothing and may take no lock: its receives are refused.
    if (this.mode === 'r') return unheldLock(this.#partialPrefix());
    const session = await this.#openSession(opts.signal);
    const lock = await holdRemoteLock(session, {
      label: this.#partialPrefix(),
      command: opts.command ?? process.argv.slice(1).join(' '),
    });
    this.#runLock = lock;
    return forgettingLock(lock, () => {
      if (this.#runLock === lock) this.#runLock = undefined;
    });
  }

  /**
   * Asks the remote to check the plan before anything is sent (planned names
   * free, room for the plan; see BtrfsStore.preflight). A protocol 1 server
   * cannot: then nothing is checked ahead and its receive refuses a taken name.
   */
  async preflight(
    transfers: readonly PreflightTransfer[],
    opts: PreflightOptions = {},
  ): Promise<PreflightProblem[]> {
    // An `r` server refuses every receive, with its own message; it checks nothing ahead.
    if (this.mode === 'r') return [];
    if ((await this.#controlVersion(opts.signal)) < LOCK_PROTOCOL_VERSION) return [];
    const r = await this.#request(
      {
        op: 'preflight',
        transfers: transfers.map((t) => ({ to: ref(t.to), size: t.size, estimated: t.estimated })),
        spaceCheck: opts.spaceCheck ?? true,
      },
      opts.signal,
    );
    return parsePreflightResult(r, this.#label);
  }

  async deleteDiff(diff: DiffOffer): Promise<void> {
    throw new StoreError(
      `an ssh store holds snapshots, not diffs (asked to delete ${diff.to}_${diff.from ?? 'None'})`,
    );
  }

  #partialPrefix(): string {
    return formatLocation({ ...this.location, snapshot: undefined } as SshLocation);
  }

  async listPartials(opts: StoreOpOptions = {}): Promise<Partial[]> {
    const r = await this.#request({ op: 'listPartials' }, opts.signal);
    const paths = parseListPartialsResult(r);
    return paths.map((p) => ({ where: this.#partialPrefix() + p }));
  }

  async deletePartials(partials: readonly Partial[], opts: StoreOpOptions = {}): Promise<void> {
    if (partials.length === 0) return;
    const prefix = this.#partialPrefix();
    const paths = partials.map((p) => {
      if (!p.where.startsWith(prefix)) {
        throw new StoreError(`${p.where}: not a partial of ${prefix}`);
      }
      return p.where.slice(prefix.length);
    });
    await this.#request({ op: 'deletePartials', paths, ...this.#lockToken() }, opts.signal);
  }

  /** Drops the connection at once, as a network failure would (for tests and emergencies). */
  async disconnect(): Promise<void> {
    const c = await this.#connection?.catch(() => undefined);
    c?.destroy();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const control = await this.#control?.catch(() => undefined);
    this.#control = undefined;
    if (control) {
      await control
        .finish()
        .catch((err: unknown) =>
          debug('ssh control session did not end cleanly', { error: describeError(err) }),
        );
    }
    const conn = await this.#connection?.catch(() => undefined);
    this.#connection = undefined;
    await conn?.close();
  }
}
