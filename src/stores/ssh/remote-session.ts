/**
 * The client side of one protocol session: one exec channel running
 * `<remote command> --server --mode M <dir>/`, the handshake, requests, and
 * the remote exit status (an ssh2 channel reports it as an `exit` event, not
 * as a stream error; it is checked explicitly). The remote's stderr is kept
 * (last 4 KiB, blank lines left out) for error messages and logged as debug lines.
 *
 * Idle limit: nothing waits for ever on a remote that stopped (a stopped or
 * wedged `buttersink --server` or `btrfs`, while sshd still answers keepalives).
 * Waiting for a frame the remote owes (the handshake, an answer, the next frame
 * of a send, the exit after our end) fails after `idleMs` without a byte
 * arriving, and so does writing while the remote reads nothing for `idleMs`;
 * both with a one-line {@link TimeoutError} naming the limit. While we are the
 * ones sending (a push before its `end`), the remote owes nothing and its
 * silence is not idleness.
 */
import type { Readable } from 'node:stream';
import { RemoteError, describeError } from '../../errors.js';
import { debug, warn } from '../../log.js';
import { FrameReader, FrameWriter, ProtocolError, TimeoutError } from '../../wire/frame.js';
import type { Frame, FrameReaderOptions } from '../../wire/frame.js';
import { MAX_RESPONSE_JSON, PROTOCOL_VERSIONS, RemoteOperationError } from '../../wire/protocol.js';
import type { Request } from '../../wire/protocol.js';
import type { StreamSupport } from '../../btrfs/send-capabilities.js';
import { parseServerHello } from '../../wire/responses.js';
import type { ExecChannel, SshTransport } from './transport.js';
import { formatSeconds as seconds } from '../../format.js';

/** How the remote command ended. */
export interface RemoteExit {
  /** Exit code, or null when it was killed by a signal or never reported. */
  code: number | null;
  signal?: string;
}

const STDERR_TAIL = 4096;

/** Default idle limit of a session (see the module header): 300 s. */
export const DEFAULT_SSH_IDLE_MS = 300_000;

/**
 * Least time the remote command gets to start and say hello (login shell,
 * sudo, the runtime starting on a busy or sleeping host), whatever the idle limit.
 */
export const SSH_START_MS = 30_000;

/** A time limit of an {@link IdleFrameReader}: ms (0: none) and the error's message. */
interface ReadLimit {
  readonly ms: number;
  readonly message: string;
}

/**
 * A {@link FrameReader} whose `next()` fails with a {@link TimeoutError} once it
 * waited {@link limit}`.ms` without a byte arriving while an answer is {@link owed};
 * and, with {@link endIsLoss}, turns an end of the channel into `lost()`'s error.
 */
class IdleFrameReader extends FrameReader {
  /** The limit applied to the waits (the session sets a longer one for the start-up). */
  limit: ReadLimit;
  /** Called once when the limit ran out (before the pending `next()` rejects). */
  onTimeout: (() => void) | undefined;
  readonly #abort: AbortController;
  #waiting = false;
  #owed = true;
  /** When the current idle period started: the wait began, a byte arrived, or the answer became owed. */
  #since = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Set while the channel must not end (a send in progress): an end is the connection lost. */
  endIsLoss: (() => Promise<Error>) | undefined;

  constructor(
    stream: Readable,
    opts: Omit<FrameReaderOptions, 'idleMs' | 'onIdle' | 'signal'>,
    limit: ReadLimit,
  ) {
    const abort = new AbortController();
    super(stream, { ...opts, signal: abort.signal });
    this.#abort = abort;
    this.limit = limit;
    // Bytes arriving (seen before the base class reads them) restart the idle period.
    stream.on('readable', () => (this.#since = performance.now()));
  }

  /** Whether the remote owes us a frame now (default true); while false, waiting is not idleness. */
  set owed(owed: boolean) {
    if (owed && !this.#owed) this.#since = performance.now();
    this.#owed = owed;
    this.#arm();
  }

  #arm(): void {
    const { ms } = this.limit;
    if (this.#timer !== undefined || ms <= 0 || !this.#waiting || !this.#owed) return;
    const left = Math.max(0, this.#since + ms - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#waiting || !this.#owed) return;
      if (performance.now() - this.#since >= this.limit.ms) {
        this.onTimeout?.();
        this.#abort.abort(new TimeoutError(this.limit.message));
      } else this.#arm();
    }, left);
  }

  override async next(): Promise<Frame | null> {
    this.#waiting = true;
    this.#since = performance.now();
    this.#arm();
    let frame: Frame | null;
    try {
      frame = await super.next();
    } finally {
      this.#waiting = false;
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (frame === null && this.endIsLoss) throw await this.endIsLoss();
    return frame;
  }
}

/**
 * One session. Contract: `open` resolves after a valid server hello and our
 * hello were exchanged; `request` resolves with the server's result or rejects
 * with a {@link RemoteOperationError} carrying its code; `finish` ends our
 * input and rejects unless the remote exited 0; `destroy` closes the channel
 * (the remote sees end of input / EPIPE and cancels what it was doing).
 */
export class RemoteSession {
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
  readonly label: string;
  readonly #reader: IdleFrameReader;
  readonly #channel: ExecChannel;
  readonly #conn: SshTransport | undefined;
  readonly #idleMs: number;
  readonly #exited: Promise<RemoteExit>;
  #stderr = '';
  #exit: RemoteExit | undefined;
  /** Set when an idle limit ran out: the remote is stuck, waiting for its exit is pointless. */
  #timedOut = false;
  #version = 0;
  #streams: StreamSupport | undefined;
  /** What the session is doing, for a lost connection's message: `the handshake`, `push`, … */
  #during = 'the handshake';

  private constructor(
    channel: ExecChannel,
    label: string,
    conn: SshTransport | undefined,
    idleMs: number,
  ) {
    this.#channel = channel;
    this.label = label;
    this.#conn = conn;
    this.#idleMs = idleMs;
    this.#reader = new IdleFrameReader(
      channel,
      { maxJson: MAX_RESPONSE_JSON, peer: label },
      {
        ms: idleMs,
        message: `the remote buttersink at ${label} sent nothing for ${seconds(idleMs)} (idle limit); closing the session`,
      },
    );
    this.#reader.onTimeout = () => (this.#timedOut = true);
    this.reader = this.#reader;
    // The writer's own idle limit: the remote read nothing of what we wrote for idleMs.
    this.writer = new FrameWriter(channel, {
      peer: `remote buttersink at ${label}`,
      idleMs,
      onIdle: () => (this.#timedOut = true),
    });
    channel.on('exit', (code: number | null, signal?: string) => {
      this.#exit = { code, ...(signal ? { signal } : {}) };
    });
    channel.on('error', (err: Error) => debug('ssh channel error', { error: describeError(err) }));
    channel.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      // Blank lines carry nothing (the server writes one to check its channel is still there).
      this.#stderr = (this.#stderr + text).replace(/\n{2,}/g, '\n').slice(-STDERR_TAIL);
      for (const line of text.split('\n')) if (line.trim()) debug('remote stderr', { line });
    });
    this.#exited = new Promise((resolve) =>
      channel.once('close', () => resolve(this.#exit ?? { code: null })),
    );
  }

  /**
   * Runs `command` on `conn` and performs the handshake. `idleMs`: the idle limit
   * (default {@link DEFAULT_SSH_IDLE_MS}; 0: none).
   */
  static async open(
    conn: SshTransport,
    command: string,
    label: string,
    opts: { idleMs?: number } = {},
  ): Promise<RemoteSession> {
    const channel = await conn.exec(command);
    const session = new RemoteSession(channel, label, conn, opts.idleMs ?? DEFAULT_SSH_IDLE_MS);
    const idle = session.#reader.limit;
    if (idle.ms > 0 && idle.ms < SSH_START_MS) {
      session.#reader.limit = {
        ms: SSH_START_MS,
        message: `${label}: the remote command did not start answering within ${seconds(SSH_START_MS)} (start-up limit): ${command.split(' --server')[0]}`,
      };
    }
    try {
      let first;
      try {
        first = await session.reader.next();
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        throw await session.#failure(
          `${command.split(' --server')[0]} did not answer with the buttersink protocol (${describeError(err)}); check --remote-command`,
        );
      }
      if (first === null) {
        const transportFailure = await session.#startFailure();
        if (transportFailure) throw transportFailure;
        // A channel closed without an exit status is the connection dying (sshd killed,
        // network gone), not the remote command ending.
        if (await session.#connectionLost()) throw await session.lost();
        throw await session.#failure(`remote command '${command}' ended before the handshake`);
      }
      session.#reader.limit = idle;
      const hello = first.kind === 'json' ? parseServerHello(first.message) : undefined;
      const versions = hello?.versions ?? [];
      if (!hello) {
        throw await session.#failure(`remote command '${command}' is not a buttersink server`);
      }
      const common = PROTOCOL_VERSIONS.filter((v) => versions.includes(v));
      const version = common[common.length - 1];
      if (version === undefined) {
        throw await session.#failure(
          `remote buttersink speaks protocol ${versions.join(', ')}, this one ${PROTOCOL_VERSIONS.join(', ')}: install the same version on both hosts`,
        );
      }
      await session.writer.json({ type: 'hello', version });
      session.#version = version;
      session.#streams = hello.streams;
      session.#during = 'the session';
      return session;
    } catch (err) {
      await session.destroy();
      throw err;
    }
  }

  /** Builds the error for a session that failed: the reason, the exit status and the remote's stderr. */
  async #failure(reason: string): Promise<RemoteError> {
    const exit = await Promise.race([
      this.#exited,
      new Promise<RemoteExit | undefined>((r) => setTimeout(() => r(undefined), 2000).unref()),
    ]);
    const status =
      exit === undefined
        ? ''
        : exit.code !== null
          ? ` (exit ${exit.code}${exit.code === 127 ? ': command not found' : ''})`
          : exit.signal
            ? ` (killed by ${exit.signal})`
            : '';
    const stderr = this.#stderr.trim().split('\n').slice(-3).join(' | ');
    return new RemoteError(`${this.label}: ${reason}${status}${stderr ? `: ${stderr}` : ''}`, {
      ...(exit?.code != null ? { exitCode: exit.code } : {}),
    });
  }

  /**
   * The transport's own error for a channel that ended before the handshake
   * (the `ssh` program could not connect or authenticate), once it closed
   * (waits up to 2 s); undefined when the remote command ended on its own.
   */
  async #startFailure(): Promise<Error | undefined> {
    if (!this.#channel.startFailure) return undefined;
    await Promise.race([
      this.#exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref()),
    ]);
    return this.#channel.startFailure();
  }

  /**
   * Whether the channel ended because the connection died: the SSH connection closed
   * or failed, or the channel closed without the exit status every remote command
   * that ends on its own reports. Waits up to 2 s for the channel to close.
   */
  async #connectionLost(): Promise<boolean> {
    if (this.#conn?.closed || this.#conn?.dropReason !== undefined) return true;
    const exit = await Promise.race([
      this.#exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref()),
    ]);
    if (this.#conn?.closed || this.#conn?.dropReason !== undefined) return true;
    if (this.#channel.lostReason !== undefined) return true;
    return exit !== undefined && exit.code === null && exit.signal === undefined;
  }

  /**
   * The error for a connection that ended while an answer was due:
   * `ssh://host: connection lost during push (write EPIPE)`.
   */
  async lost(): Promise<RemoteError> {
    // Why is known once the channel closed (OpenSSH: after the ssh process exited);
    // give it up to 2 s, as #connectionLost does.
    if (this.#conn?.dropReason === undefined && this.#channel.lostReason === undefined) {
      await Promise.race([this.#exited, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    }
    const why = this.#conn?.dropReason ?? this.#channel.lostReason;
    return this.#failure(`connection lost during ${this.#during}${why ? ` (${why})` : ''}`);
  }

  /**
   * The error to report for a failed write to the remote: {@link lost}'s error
   * when the connection died (the write only saw the channel close), else `err`.
   */
  async writeFailure(err: Error): Promise<Error> {
    if (err instanceof ProtocolError && (await this.#connectionLost())) return this.lost();
    return err;
  }

  /**
   * Whether the remote owes us a frame now (default true). False while we send
   * a stream and the remote says nothing until its commit: its silence then is
   * not idleness (a remote that stops reading is caught by the writer's limit).
   */
  set answerDue(due: boolean) {
    this.#reader.owed = due;
  }

  /**
   * While true (a send in progress), the channel ending before the stream's end
   * fails with {@link lost}'s error (exit status, stderr, keepalive limit) rather
   * than a bare protocol error.
   */
  set endIsLoss(on: boolean) {
    this.#reader.endIsLoss = on ? () => this.lost() : undefined;
  }

  /**
   * Handles a control message that is not the expected answer: forwards a
   * warning (returns true), throws for an error message, returns false for anything else.
   */
  handleCommon(message: unknown): boolean {
    const m = message as { type?: unknown; code?: unknown; message?: unknown } | null;
    if (m?.type === 'warning') {
      warn(String(m.code ?? 'REMOTE_WARNING'), `${this.label}: ${String(m.message ?? '')}`);
      return true;
    }
    if (m?.type === 'error') {
      const text = String(m.message ?? 'remote error');
      // A reason that starts with a remote path reads as a URI: `ssh://host/dir: no such directory`.
      const sep = text.startsWith('/') ? '' : ': ';
      throw new RemoteOperationError(String(m.code ?? 'FAILED'), `${this.label}${sep}${text}`);
    }
    return false;
  }

  /** Reads until a message of `type` arrives (forwarding warnings) and returns it. */
  async expect(type: string): Promise<Record<string, unknown>> {
    for (;;) {
      const frame = await this.reader.next().catch(async (err: unknown) => {
        if (err instanceof ProtocolError) throw await this.#failure(describeError(err));
        throw err;
      });
      if (frame === null) throw await this.lost();
      if (frame.kind !== 'json') {
        throw new ProtocolError(`${this.label}: unexpected data from the remote`);
      }
      if (this.handleCommon(frame.message)) continue;
      const m = frame.message as Record<string, unknown> | null;
      if (m?.type === type) return m;
      throw new ProtocolError(`${this.label}: unexpected message ${JSON.stringify(m?.type)}`);
    }
  }

  /** The protocol version agreed in the handshake. */
  get version(): number {
    return this.#version;
  }

  /** What the server reported it can do with send stream protocol 2; undefined from an older server. */
  get streams(): StreamSupport | undefined {
    return this.#streams;
  }

  /** Sends `request` without waiting for the answer. */
  send(request: Request): Promise<void> {
    const op = String((request as { op?: unknown }).op);
    this.#during = op === 'receive' ? 'push' : op === 'send' ? 'pull' : `the ${op} request`;
    return this.writer.json({ type: 'request', ...request });
  }

  /** Sends `request` and returns the server's result. */
  async request(request: Request): Promise<Record<string, unknown>> {
    await this.send(request);
    return this.expect('result');
  }

  /** Ends our input and waits for the remote to exit; rejects unless it exited 0. */
  async finish(): Promise<void> {
    this.endIsLoss = false;
    this.answerDue = true;
    this.writer.end();
    try {
      for (;;) {
        const frame = await this.reader.next();
        if (frame === null) break;
        if (frame.kind === 'data' || !this.handleCommon(frame.message)) {
          throw new ProtocolError(`${this.label}: unexpected output after the last answer`);
        }
      }
    } finally {
      this.reader.discard();
    }
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      this.#exited,
      ...(this.#idleMs > 0
        ? [new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), this.#idleMs)))]
        : []),
    ]);
    clearTimeout(timer);
    if (exit === undefined) {
      throw new TimeoutError(
        `${this.label}: the remote buttersink ended its output but did not exit within ${seconds(this.#idleMs)} (idle limit)`,
      );
    }
    if (exit.code !== 0) {
      if (await this.#connectionLost()) throw await this.lost();
      throw await this.#failure('remote buttersink did not exit cleanly');
    }
  }

  /**
   * Closes the channel without waiting for a clean end. Idempotent; resolves once it
   * closed (at once after an idle limit ran out: a stuck remote never confirms).
   */
  async destroy(): Promise<void> {
    this.reader.discard();
    this.#channel.close();
    if (this.#timedOut) return;
    await Promise.race([this.#exited, new Promise<void>((r) => setTimeout(r, 5000).unref())]);
  }
}
