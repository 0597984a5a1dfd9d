/**
 * What the SSH store needs of an SSH transport: a way to run the remote
 * command and talk to it over its stdin/stdout. Two transports provide it:
 * the built-in one (ssh2, one connection multiplexing exec channels; see
 * `ssh-connection.ts`) and the system's OpenSSH client (one `ssh` process per
 * channel; see `openssh.ts`). The framed protocol on top is the same.
 */
import type { Duplex, Readable } from 'node:stream';

/**
 * One remote command: a Duplex (its stdout to read, its stdin to write) as an
 * ssh2 exec channel is, with `stderr`, an `exit` event `(code, signal?)`, then
 * `close`, and `close()` to stop it (the remote sees its input end).
 */
export interface ExecChannel extends Duplex {
  readonly stderr: Readable;
  close(): void;
  /**
   * Why the channel ended when the transport under it failed (the local `ssh`
   * process killed or its connection dropped), once it ended; undefined when
   * the remote command ended on its own.
   */
  readonly lostReason?: string | undefined;
  /**
   * The one-line error for a transport that failed before the remote command
   * said anything (host key refused, authentication failed, host unreachable),
   * once the channel ended; undefined when the remote command itself ended.
   */
  startFailure?(): Error | undefined;
}

/**
 * A transport to one host. Contract: `exec` runs a shell command line on the
 * remote host; `closed` turns true once the transport closed; `dropReason`
 * says why it failed after it was up; `close` is idempotent.
 */
export interface SshTransport {
  readonly closed: boolean;
  readonly dropReason: string | undefined;
  exec(command: string): Promise<ExecChannel>;
  /** Drops every channel at once (tests, emergencies). */
  destroy(): void;
  close(): Promise<void>;
}
