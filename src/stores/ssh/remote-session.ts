/**
 * The client side of one protocol session: one exec channel running
 * `<remote command> --server --mode M <dir>/`, the handshake, requests, and
 * the remote exit status (an ssh2 channel reports it as an `exit` event, not
 * as a stream error; it is checked explicitly). The remote's stderr is kept
 * (last 4 KiB) for error messages and logged as debug lines.
 */
import type { ClientChannel } from 'ssh2';
import { RemoteError, describeError } from '../../errors.js';
import { debug, warn } from '../../log.js';
import { FrameReader, FrameWriter, ProtocolError } from '../../server/frame.js';
import {
  MAX_RESPONSE_JSON,
  PROTOCOL_NAME,
  PROTOCOL_VERSIONS,
  RemoteOperationError,
} from '../../server/protocol.js';
import type { Request } from '../../server/protocol.js';
import type { SshConnection } from './ssh-connection.js';

/** How the remote command ended. */
export interface RemoteExit {
  /** Exit code, or null when it was killed by a signal or never reported. */
  code: number | null;
  signal?: string;
}

const STDERR_TAIL = 4096;

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
  readonly #channel: ClientChannel;
  readonly #exited: Promise<RemoteExit>;
  #stderr = '';
  #exit: RemoteExit | undefined;

  private constructor(channel: ClientChannel, label: string) {
    this.#channel = channel;
    this.label = label;
    this.reader = new FrameReader(channel, { maxJson: MAX_RESPONSE_JSON, peer: label });
    this.writer = new FrameWriter(channel, { peer: label });
    channel.on('exit', (code: number | null, signal?: string) => {
      this.#exit = { code, ...(signal ? { signal } : {}) };
    });
    channel.on('error', (err: Error) => debug('ssh channel error', { error: describeError(err) }));
    channel.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL);
      for (const line of text.split('\n')) if (line.trim()) debug('remote stderr', { line });
    });
    this.#exited = new Promise((resolve) =>
      channel.once('close', () => resolve(this.#exit ?? { code: null })),
    );
  }

  /** Runs `command` on `conn` and performs the handshake. */
  static async open(conn: SshConnection, command: string, label: string): Promise<RemoteSession> {
    const channel = await conn.exec(command);
    const session = new RemoteSession(channel, label);
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
        throw await session.#failure(`remote command '${command}' ended before the handshake`);
      }
      const hello = first.kind === 'json' ? (first.message as Record<string, unknown>) : undefined;
      const versions = Array.isArray(hello?.versions) ? (hello.versions as unknown[]) : [];
      if (hello?.type !== 'hello' || hello.protocol !== PROTOCOL_NAME) {
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
    return new RemoteError(`${this.label}: ${reason}${status}${stderr ? `: ${stderr}` : ''}`);
  }

  /** The error for a connection that ended while an answer was due. */
  lost(): Promise<RemoteError> {
    return this.#failure('connection to the remote buttersink lost');
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
      throw new RemoteOperationError(
        String(m.code ?? 'FAILED'),
        `${this.label}: ${String(m.message ?? 'remote error')}`,
      );
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

  /** Sends `request` without waiting for the answer. */
  send(request: Request): Promise<void> {
    return this.writer.json({ type: 'request', ...request });
  }

  /** Sends `request` and returns the server's result. */
  async request(request: Request): Promise<Record<string, unknown>> {
    await this.send(request);
    return this.expect('result');
  }

  /** Ends our input and waits for the remote to exit; rejects unless it exited 0. */
  async finish(): Promise<void> {
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
    const exit = await this.#exited;
    if (exit.code !== 0) {
      throw await this.#failure('remote buttersink did not exit cleanly');
    }
  }

  /** Closes the channel without waiting for a clean end. Idempotent; resolves once it closed. */
  async destroy(): Promise<void> {
    this.reader.discard();
    this.#channel.close();
    await Promise.race([this.#exited, new Promise<void>((r) => setTimeout(r, 5000).unref())]);
  }
}
