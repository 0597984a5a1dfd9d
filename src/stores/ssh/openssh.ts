/**
 * The system's OpenSSH client as the SSH store's transport (`--ssh-program`):
 * every channel is one `ssh [opts] [-l user] [-p port] -- host '<command>'`
 * process, and the framed protocol runs over its stdin/stdout. Everything about
 * reaching the host is OpenSSH's own: `~/.ssh/config` (Include, Match,
 * ProxyJump), ssh-agent, certificates, hardware AES, host key checking
 * (nothing here weakens it: `--accept-new-host-key` maps to
 * `StrictHostKeyChecking=accept-new`, nothing else is added). Options we add
 * come after the user's program words, so the user's `-o` win (OpenSSH keeps
 * the first value it reads).
 *
 * Failures: `ssh` exits 255 for its own errors. Before the remote command said
 * anything, that is a failed start ({@link describeSshFailure}: host key
 * refused, authentication failed, host unreachable, one line with a hint);
 * afterwards, a lost connection. A remote exit status (127: command not found)
 * passes through unchanged.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import { HostKeyError, StoreError, UsageError, describeError } from '../../errors.js';
import { debug } from '../../log.js';
import { ProtocolError } from '../../wire/frame.js';
import type { ExecChannel, SshTransport } from './transport.js';

/**
 * Splits a command line into words as a POSIX shell would for simple cases:
 * blanks separate words; '…' quotes literally; "…" quotes with `\` escaping
 * `"`, `\` and `$`; a `\` outside quotes escapes the next character. Throws a
 * {@link UsageError} for an unterminated quote or an empty line.
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const add = (s: string) => (word = (word ?? '') + s);
  while (i < line.length) {
    const c = line[i]!;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new UsageError(`unterminated ' in ${JSON.stringify(line)}`);
      add(line.slice(i + 1, end));
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\' && /["\\$]/.test(line[j + 1] ?? '')) j++;
        s += line[j++];
      }
      if (j >= line.length) throw new UsageError(`unterminated " in ${JSON.stringify(line)}`);
      add(s);
      i = j + 1;
    } else if (c === '\\' && i + 1 < line.length) {
      add(line[i + 1]!);
      i += 2;
    } else {
      add(c);
      i++;
    }
  }
  if (word !== undefined) words.push(word);
  if (words.length === 0) throw new UsageError('ssh program: empty command line');
  return words;
}

/** Where and how {@link openSshArgv} connects. */
export interface OpenSshTarget {
  host: string;
  user?: string;
  port?: number;
  /** `-i` files, tried before the config's. */
  identityFiles?: readonly string[];
  /** `-F`: the ssh config file instead of `~/.ssh/config`. */
  configFile?: string;
  /** `UserKnownHostsFile`. */
  knownHostsFiles?: readonly string[];
  /** `StrictHostKeyChecking=accept-new`: add an unknown host's key (a changed one stays refused). */
  acceptNewHostKey?: boolean;
}

/**
 * The argv (program first) that runs `command` on `target` through `program`
 * (a command line, e.g. `ssh` or `ssh -F ./cfg -o Compression=no`). Adds `-T`
 * (no tty: the stream is binary), `-x -a` (no X11 or agent forwarding to the
 * server), `-e none` (no escape character), and `--` before the host, so a host
 * name can never be read as an option.
 */
export function openSshArgv(program: string, target: OpenSshTarget, command: string): string[] {
  const o = (option: string) => ['-o', option];
  const known = target.knownHostsFiles ?? [];
  return [
    ...splitCommandLine(program),
    '-T',
    '-x',
    '-a',
    '-e',
    'none',
    ...(target.configFile !== undefined ? ['-F', target.configFile] : []),
    ...(known.length > 0 ? o(`UserKnownHostsFile=${known.join(' ')}`) : []),
    ...(target.acceptNewHostKey ? o('StrictHostKeyChecking=accept-new') : []),
    ...(target.identityFiles ?? []).flatMap((f) => ['-i', f]),
    ...(target.user !== undefined ? ['-l', target.user] : []),
    ...(target.port !== undefined ? ['-p', String(target.port)] : []),
    '--',
    target.host,
    command,
  ];
}

/** The last non-blank lines of `text`, joined with ` | `. */
function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^@+$/.test(l))
    .slice(-n)
    .join(' | ');
}

/**
 * The one-line error for an `ssh` that exited 255 before the remote command
 * said anything, from its stderr: a changed or unknown host key
 * ({@link HostKeyError}), failed authentication, or any other failure to
 * connect, each with what to do. `label` names the store (`ssh://host`),
 * `login` the `ssh` command to try by hand.
 */
export function describeSshFailure(label: string, login: string, stderr: string): Error {
  const said = lastLines(stderr, 1) || 'no message';
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(stderr)) {
    return new HostKeyError(
      `${label}: ssh refused the host key: it has CHANGED since it was recorded (someone may be intercepting the connection, or the host was reinstalled); if the change is expected, remove the old key with ssh-keygen -R and check the new fingerprint (${login})`,
    );
  }
  if (/Host key verification failed|No \S+ host key is known/i.test(stderr)) {
    return new HostKeyError(
      `${label}: ssh refused the host key: the host is not in known_hosts (${said}); check its fingerprint and accept it by connecting once (${login}), or pass --accept-new-host-key`,
    );
  }
  if (/Permission denied|Too many authentication failures/i.test(stderr)) {
    return new StoreError(
      `${label}: ssh authentication failed (${said}); check -i, ssh-add or the remote authorized_keys (try ${login})`,
    );
  }
  return new StoreError(`${label}: ssh failed (exit 255): ${said}; run ${login} to see why`);
}

/** One `ssh` process as an exec channel (see {@link ExecChannel}). */
class OpenSshChannel extends Duplex implements ExecChannel {
  readonly stderr = new PassThrough();
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #describeFailure: (stderr: string) => Error;
  #stderrTail = '';
  #gotOutput = false;
  #exitCode: number | null | undefined;
  #exitSignal: NodeJS.Signals | null = null;
  #closing = false;
  #inputLost = false;

  constructor(child: ChildProcessWithoutNullStreams, describeFailure: (stderr: string) => Error) {
    super({
      emitClose: false,
      // Both sides done is not ssh done (it still closes the connection and reports the
      // exit status): only close() and destroy() stop it.
      autoDestroy: false,
      readableHighWaterMark: 256 << 10,
      writableHighWaterMark: 256 << 10,
    });
    this.#child = child;
    this.#describeFailure = describeFailure;
    const { stdout, stdin } = child;
    stdout.on('data', (chunk: Buffer) => {
      this.#gotOutput = true;
      if (!this.push(chunk)) stdout.pause();
    });
    stdout.on('end', () => this.push(null));
    stdout.on('error', (err) => debug('ssh stdout error', { error: describeError(err) }));
    stdin.on('error', (err) => debug('ssh stdin error', { error: describeError(err) }));
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderrTail = (this.#stderrTail + chunk.toString('utf8')).slice(-4096);
      this.stderr.write(chunk);
    });
    child.on('exit', (code, signal) => {
      this.#exitCode = code;
      this.#exitSignal = signal;
      // 255 and a signal are ssh's own failures, not the remote command's exit: report no status.
      const own = code === 255 || signal !== null;
      this.emit('exit', own ? null : code);
    });
    child.on('close', () => {
      this.stderr.end();
      this.emit('close');
    });
  }

  override _read(): void {
    this.#child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const stdin = this.#child.stdin;
    if (stdin.destroyed || !stdin.writable) return cb(this.#inputClosed());
    if (stdin.write(chunk)) return cb();
    const done = (err?: Error | null) => {
      stdin.off('drain', onDrain);
      stdin.off('close', onClose);
      cb(err);
    };
    const onDrain = () => done();
    const onClose = () => done(this.#inputClosed());
    stdin.once('drain', onDrain);
    stdin.once('close', onClose);
  }

  /** The write error once ssh stopped reading (it is ending on its own: not our close). */
  #inputClosed(): ProtocolError {
    this.#inputLost = true;
    return new ProtocolError('connection closed: ssh stopped reading its input');
  }

  override _final(cb: () => void): void {
    this.#child.stdin.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Destroyed after ssh stopped reading: it is ending on its own, and that end may be a loss.
    if (this.#inputLost) this.#stop();
    else this.close();
    cb(err);
  }

  /** Stops `ssh` (SIGTERM): the connection closes and the remote sees its input end. */
  close(): void {
    // Its end is then ours, not a lost connection (unless it ended before).
    if (this.#exitCode === undefined) this.#closing = true;
    this.#stop();
  }

  #stop(): void {
    this.#child.stdin.destroy();
    if (this.#exitCode === undefined && this.#child.exitCode === null) this.#child.kill('SIGTERM');
  }

  get lostReason(): string | undefined {
    if (this.#exitCode === undefined) return undefined;
    // Our SIGTERM (which ssh answers with exit 255) is no loss; any other signal is.
    if (this.#exitSignal !== null && !(this.#closing && this.#exitSignal === 'SIGTERM')) {
      return `the local ssh process was killed by ${this.#exitSignal}`;
    }
    if (this.#exitCode === 255 && !this.#closing) {
      return `ssh exited 255${lastLines(this.#stderrTail, 1) ? `: ${lastLines(this.#stderrTail, 1)}` : ''}`;
    }
    return undefined;
  }

  startFailure(): Error | undefined {
    if (this.#gotOutput || this.#exitCode !== 255) return undefined;
    return this.#describeFailure(this.#stderrTail);
  }
}

/**
 * The OpenSSH transport to one host: {@link exec} spawns one `ssh` per channel.
 * `closed` once {@link close}d; there is no connection to drop between
 * channels, so `dropReason` stays undefined (each channel reports its own loss).
 */
export class OpenSshTransport implements SshTransport {
  readonly #program: string;
  readonly #target: OpenSshTarget;
  readonly #label: string;
  readonly #channels = new Set<OpenSshChannel>();
  #closed = false;

  /** Throws a UsageError for an unusable `program` line. */
  constructor(program: string, target: OpenSshTarget, label: string) {
    splitCommandLine(program);
    this.#program = program;
    this.#target = target;
    this.#label = label;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get dropReason(): string | undefined {
    return undefined;
  }

  /** The command to try by hand to see why ssh failed: `ssh -p 2222 user@host true`. */
  get #login(): string {
    const t = this.#target;
    return [
      this.#program,
      ...(t.configFile !== undefined ? ['-F', t.configFile] : []),
      ...(t.port !== undefined ? ['-p', String(t.port)] : []),
      `${t.user !== undefined ? `${t.user}@` : ''}${t.host}`,
      'true',
    ].join(' ');
  }

  /** Spawns `ssh … host command`; rejects with a one-line StoreError when the program cannot run. */
  async exec(command: string): Promise<ExecChannel> {
    if (this.#closed) throw new StoreError(`${this.#label}: connection is closed`);
    const [file, ...args] = openSshArgv(this.#program, this.#target, command);
    const child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.on('error', (err) => debug('ssh process error', { error: describeError(err) }));
      child.once('error', (err) =>
        reject(
          new StoreError(
            `${this.#label}: cannot run the ssh program '${file}': ${describeError(err)}; check --ssh-program`,
            { cause: err },
          ),
        ),
      );
    });
    debug('ssh started', { pid: child.pid, argv: [file, ...args].join(' ') });
    const channel = new OpenSshChannel(child, (stderr) =>
      describeSshFailure(this.#label, this.#login, stderr),
    );
    this.#channels.add(channel);
    child.once('close', () => this.#channels.delete(channel));
    return channel;
  }

  destroy(): void {
    for (const c of this.#channels) c.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const open = [...this.#channels];
    for (const c of open) c.close();
    await Promise.all(open.map((c) => new Promise((r) => c.once('close', r))));
  }
}
