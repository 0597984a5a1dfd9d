/**
 * One SSH connection (ssh2 `Client`) to a host as OpenSSH would make it:
 * `~/.ssh/config` for the alias (HostName, User, Port, IdentityFile,
 * IdentitiesOnly, UserKnownHostsFile), authentication by ssh-agent
 * (`SSH_AUTH_SOCK`) then identity files (`-i` and config IdentityFile, else
 * `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`), and the host key checked against
 * known_hosts before anything is sent: unknown keys and changed keys are
 * refused with a {@link HostKeyError}; `acceptNewHostKey` appends the key of
 * a host that has no entry at all (never adds a key for a host known under
 * another key, of any type), like OpenSSH's `accept-new`. Identity files that
 * group or others may access are refused, as OpenSSH does.
 */
import { appendFile, mkdir, open, readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ConnectConfig, ParsedKey } from 'ssh2';
import { AbortedError, HostKeyError, StoreError, UsageError, describeError } from '../../errors.js';
import { debug, warn } from '../../log.js';
import {
  checkHostKey,
  fingerprint,
  keyTypeOf,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
} from './known-hosts.js';
import type { KnownHostEntry } from './known-hosts.js';
import { expandPath, hostConfig, parseSshConfig } from './ssh-config.js';
import type { ExecChannel, SshTransport } from './transport.js';

/** Options of {@link SshConnection.connect}. */
export interface SshConnectOptions {
  /** Host or `~/.ssh/config` alias, as in the URI. */
  host: string;
  /** User from the URI; overrides the config's User. Default: config, else the local user. */
  user?: string;
  /** Port from the URI; overrides the config's Port. Default: config, else 22. */
  port?: number;
  /** Home directory for `~` and the default files. Default `os.homedir()` ($HOME). */
  home?: string;
  /** ssh config file. Default `<home>/.ssh/config` (missing is fine). */
  configFile?: string;
  /**
   * known_hosts files to check and (the first) to append to. Default: the
   * config's UserKnownHostsFile, else `<home>/.ssh/known_hosts` and
   * `known_hosts2`, plus `/etc/ssh/ssh_known_hosts` for checking.
   */
  knownHostsFiles?: readonly string[];
  /** Identity files tried first (`-i`), before the config's IdentityFile. */
  identityFiles?: readonly string[];
  /** Append the key of an unknown host (one with no known_hosts entry at all) instead of refusing. Never accepts a changed key. Default false. */
  acceptNewHostKey?: boolean;
  /** ssh-agent socket; false: no agent. Default `$SSH_AUTH_SOCK`. */
  agent?: string | false;
  /** Milliseconds allowed for connecting and authenticating. Default 20,000. */
  readyTimeout?: number;
  /**
   * Milliseconds between SSH keepalives (answered by sshd itself, so they detect a
   * dead network or host, not a stalled remote command). Default 15,000; 0 disables.
   */
  keepaliveInterval?: number;
  /**
   * Keepalives left unanswered before the connection is dropped (after about
   * `keepaliveInterval × (keepaliveCountMax + 1)` of silence). Default 4.
   */
  keepaliveCountMax?: number;
  signal?: AbortSignal;
}

/** Where and as whom a connection goes, after the config was applied. */
export interface SshTarget {
  /** The name written in the URI (alias). */
  alias: string;
  /** The host connected to (HostName). */
  hostName: string;
  port: number;
  user: string;
  /** Identity files that exist, in the order tried. */
  identityFiles: string[];
  /** Whether to skip the agent (IdentitiesOnly yes). */
  identitiesOnly: boolean;
  /** known_hosts files read; the first is appended to by accept-new. */
  knownHostsFiles: string[];
  /** The name looked up in known_hosts: `host` or `[host]:port`. */
  knownHostName: string;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError(`cannot read ${path}: ${describeError(err)}`, { cause: err });
  }
}

/** Applies `~/.ssh/config` to `opts`. Exported for tests and `--dry-run` style reporting. */
export async function resolveSshTarget(opts: SshConnectOptions): Promise<SshTarget> {
  if (typeof opts.host !== 'string' || opts.host === '') {
    throw new UsageError('ssh: host must be a non-empty string');
  }
  const home = opts.home ?? homedir();
  const configText = await readOptional(opts.configFile ?? `${home}/.ssh/config`);
  const cfg = hostConfig(configText ? parseSshConfig(configText) : [], opts.host);
  const hostName = cfg.hostName ?? opts.host;
  const port = opts.port ?? cfg.port ?? 22;
  const localUser = userInfo().username;
  const user = opts.user ?? cfg.user ?? localUser;
  const ctx = { home, localUser, host: hostName, remoteUser: user };
  const explicit = [...(opts.identityFiles ?? []), ...cfg.identityFiles].map((f) =>
    expandPath(f, ctx),
  );
  const candidates =
    explicit.length > 0
      ? explicit
      : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => `${home}/.ssh/${f}`);
  const identityFiles: string[] = [];
  for (const f of candidates) {
    if ((await readOptional(f)) !== undefined) identityFiles.push(f);
    else if (opts.identityFiles?.some((g) => expandPath(g, ctx) === f)) {
      warn('SSH_IDENTITY_MISSING', `identity file ${f} not found`);
    }
  }
  const knownHostsFiles = opts.knownHostsFiles
    ? [...opts.knownHostsFiles]
    : cfg.userKnownHostsFiles
      ? cfg.userKnownHostsFiles.map((f) => expandPath(f, ctx))
      : [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`, '/etc/ssh/ssh_known_hosts'];
  return {
    alias: opts.host,
    hostName,
    port,
    user,
    identityFiles,
    identitiesOnly: cfg.identitiesOnly ?? false,
    knownHostsFiles,
    knownHostName: knownHostName(hostName, port),
  };
}

async function readKnownHosts(files: readonly string[]): Promise<KnownHostEntry[]> {
  const out: KnownHostEntry[] = [];
  for (const f of files) {
    const text = await readOptional(f);
    if (text !== undefined) out.push(...parseKnownHosts(text, f));
  }
  return out;
}

/**
 * Reads a private key file, refusing it (as OpenSSH does) when group or others
 * have any access to it: throws a one-line {@link StoreError} naming the mode
 * and the `chmod 600` that fixes it. The mode is checked on the open file, so
 * the file checked is the file read.
 */
export async function readIdentityFile(file: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new StoreError(`cannot read identity file ${file}: ${describeError(err)}`, {
      cause: err,
    });
  }
  try {
    const mode = (await fh.stat()).mode & 0o7777;
    if ((mode & 0o077) !== 0) {
      throw new StoreError(
        `identity file ${file}: permissions ${mode.toString(8).padStart(4, '0')} are too open; it must be readable only by its owner (chmod 600 ${file})`,
      );
    }
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

function loadIdentity(file: string, text: Buffer): ParsedKey | undefined {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    const encrypted = /passphrase|encrypted/i.test(parsed.message);
    warn(
      'SSH_IDENTITY_UNUSABLE',
      encrypted
        ? `identity file ${file} is passphrase-protected: load it into ssh-agent (ssh-add) instead`
        : `identity file ${file} unreadable: ${parsed.message}`,
    );
    return undefined;
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  return key && key.isPrivateKey() ? key : undefined;
}

/** Names a host key check failure the user can act on, one line. */
function hostKeyMessage(
  target: SshTarget,
  key: Buffer,
  check: ReturnType<typeof checkHostKey>,
): string {
  const name = target.knownHostName;
  const what = `${keyTypeOf(key) ?? 'unknown'} key ${fingerprint(key)}`;
  const file = target.knownHostsFiles[0] ?? '~/.ssh/known_hosts';
  switch (check.status) {
    case 'changed': {
      const where = check.entries.map((e) => `${e.file}:${e.line} (${e.keyType})`).join(', ');
      return `HOST KEY FOR ${name} HAS CHANGED: it offered ${what}, but ${where} holds a different key. Someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled. Refusing to connect; if the change is expected, remove the old key (ssh-keygen -R '${name}' -f ${file}) and connect again.`;
    }
    case 'revoked':
      return `host key of ${name} (${what}) is marked @revoked in ${check.entry.file}:${check.entry.line}; refusing to connect`;
    default: {
      return `host ${name} is not known: it offered ${what}. If that fingerprint is the host's, accept it with --accept-new-host-key (appends to ${file}) or connect once with ssh -p ${target.port} ${target.user}@${target.hostName}.`;
    }
  }
}

/** What to do with the host key a server offered: see {@link decideHostKey}. */
export type HostKeyDecision =
  | { readonly action: 'accept' }
  | { readonly action: 'add'; readonly file: string }
  | { readonly action: 'refuse'; readonly message: string };

/**
 * Decides on the host key `key` offered by `target`, given the known_hosts
 * entries `known`. Contract: `accept` when an entry for the host holds this
 * key; `add` (append to the first known_hosts file) only with `acceptNew` and
 * when the host has no entry at all; otherwise `refuse` with a one-line
 * message naming the host, the key type and fingerprint, and where the host
 * is known. A host known under any other key, of any type, is refused as
 * changed, never added.
 */
export function decideHostKey(
  target: SshTarget,
  known: readonly KnownHostEntry[],
  key: Buffer,
  acceptNew: boolean,
): HostKeyDecision {
  const check = checkHostKey(known, target.knownHostName, key);
  if (check.status === 'known') return { action: 'accept' };
  const file = target.knownHostsFiles[0];
  if (check.status === 'unknown' && acceptNew && file !== undefined) return { action: 'add', file };
  return { action: 'refuse', message: hostKeyMessage(target, key, check) };
}

/** `user@host:port`, as connection messages name a target. */
function targetLabel(target: SshTarget): string {
  return `${target.user}@${target.hostName}:${target.port}`;
}

/**
 * The ways to authenticate, in order: the agent (unless IdentitiesOnly), then each
 * usable identity file; `tried` names them for a message. Throws a StoreError when
 * there is none.
 */
async function authMethods(
  target: SshTarget,
  agentOption: string | false | undefined,
): Promise<{ auth: AnyAuthMethod[]; tried: string }> {
  const auth: AnyAuthMethod[] = [];
  const agent = agentOption === undefined ? process.env.SSH_AUTH_SOCK : agentOption;
  if (agent && !target.identitiesOnly) auth.push({ type: 'agent', username: target.user, agent });
  for (const file of target.identityFiles) {
    const key = loadIdentity(file, await readIdentityFile(file));
    if (key) auth.push({ type: 'publickey', username: target.user, key });
  }
  if (auth.length === 0) {
    throw new StoreError(
      `ssh ${targetLabel(target)}: no usable credentials (no ssh-agent, no identity file among ${target.identityFiles.join(', ') || '~/.ssh/id_ed25519, id_ecdsa, id_rsa'}); use -i <file> or ssh-add`,
    );
  }
  const tried = [
    ...(auth.some((a) => a.type === 'agent') ? ['ssh-agent'] : []),
    ...target.identityFiles,
  ].join(', ');
  return { auth, tried };
}

/** The keepalive options with their defaults; UsageError for a bad count. */
function keepaliveSettings(opts: SshConnectOptions): {
  keepaliveInterval: number;
  keepaliveCountMax: number;
} {
  const keepaliveInterval = opts.keepaliveInterval ?? 15_000;
  const keepaliveCountMax = opts.keepaliveCountMax ?? 4;
  if (!(Number.isSafeInteger(keepaliveCountMax) && keepaliveCountMax >= 0)) {
    throw new UsageError(`ssh: keepaliveCountMax must be a whole number, got ${keepaliveCountMax}`);
  }
  return { keepaliveInterval, keepaliveCountMax };
}

/**
 * ssh2's `hostVerifier`: accepts a known key, appends an unknown host's key with
 * accept-new, refuses otherwise. Why it refused is kept in `error` (ssh2 reports
 * only a generic handshake failure).
 */
class HostVerifier {
  error: HostKeyError | undefined;

  constructor(
    private readonly target: SshTarget,
    private readonly known: readonly KnownHostEntry[],
    private readonly acceptNew: boolean,
  ) {}

  verify(key: Buffer, verify: (ok: boolean) => void): void {
    const decision = decideHostKey(this.target, this.known, key, this.acceptNew);
    if (decision.action === 'accept') return verify(true);
    if (decision.action === 'add') {
      this.add(decision.file, key).then(
        () => verify(true),
        (err: unknown) => {
          this.error = new HostKeyError(
            `cannot add host key to ${decision.file}: ${describeError(err)}`,
            { cause: err },
          );
          verify(false);
        },
      );
      return;
    }
    this.error = new HostKeyError(decision.message);
    verify(false);
  }

  /** Appends the host's key to `file` (accept-new) and warns that it did. */
  private async add(file: string, key: Buffer): Promise<void> {
    const name = this.target.knownHostName;
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await appendFile(file, knownHostsLine(name, key), { mode: 0o600 });
    warn(
      'SSH_HOST_KEY_ADDED',
      `permanently added ${name} (${keyTypeOf(key)} ${fingerprint(key)}) to ${file}`,
    );
  }
}

/** The error a failed handshake rejects with: the host key's, authentication's, or the socket's. */
function connectError(
  target: SshTarget,
  err: Error & { level?: string },
  hostKeyError: HostKeyError | undefined,
  tried: string,
): Error {
  if (hostKeyError) return hostKeyError;
  const label = targetLabel(target);
  if (err.level === 'client-authentication') {
    return new StoreError(
      `ssh ${label}: authentication failed (tried ${tried}); use -i <file>, ssh-add, or check authorized_keys`,
      { cause: err },
    );
  }
  return new StoreError(`ssh ${label}: ${describeError(err)}`, { cause: err });
}

/** Connects `client`; resolves when ready, rejects with `failure(err)` or when `signal` aborts. */
function handshake(
  client: ssh2.Client,
  config: ConnectConfig,
  signal: AbortSignal | undefined,
  failure: (err: Error & { level?: string }) => Error,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      client.end();
      reject(new AbortedError('ssh connect aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      signal?.removeEventListener('abort', onAbort);
      debug('ssh connected', { target: `${config.username}@${config.host}:${config.port}` });
      resolve();
    });
    client.once('error', (err: Error & { level?: string }) => {
      signal?.removeEventListener('abort', onAbort);
      reject(failure(err));
    });
    client.connect(config);
  });
}

/**
 * An authenticated SSH connection. Contract: `connect` resolves only after the
 * host key was verified and authentication succeeded; `exec` opens one exec
 * channel per call; `close` is idempotent and resolves once the socket closed.
 */
export class SshConnection implements SshTransport {
  readonly target: SshTarget;
  readonly #client: ssh2.Client;
  #closed = false;
  readonly #closedPromise: Promise<void>;
  #dropReason: string | undefined;

  private constructor(target: SshTarget, client: ssh2.Client) {
    this.target = target;
    this.#client = client;
    this.#closedPromise = new Promise((resolve) =>
      client.once('close', () => {
        this.#closed = true;
        resolve();
      }),
    );
  }

  /** Resolves the target from the config, checks the host key, authenticates. */
  static async connect(opts: SshConnectOptions): Promise<SshConnection> {
    opts.signal?.throwIfAborted();
    const target = await resolveSshTarget(opts);
    const known = await readKnownHosts(target.knownHostsFiles);
    const { auth, tried } = await authMethods(target, opts.agent);
    const keepalive = keepaliveSettings(opts);
    const client = new ssh2.Client();
    const conn = new SshConnection(target, client);
    const verifier = new HostVerifier(target, known, opts.acceptNewHostKey ?? false);
    const config: ConnectConfig = {
      host: target.hostName,
      port: target.port,
      username: target.user,
      authHandler: auth,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => verifier.verify(key, verify),
      algorithms: {
        serverHostKey: preferredHostKeyAlgorithms(known, target.knownHostName) as NonNullable<
          ConnectConfig['algorithms']
        >['serverHostKey'],
      },
      readyTimeout: opts.readyTimeout ?? 20_000,
      ...keepalive,
    };
    await handshake(client, config, opts.signal, (err) =>
      connectError(target, err, verifier.error, tried),
    );
    client.on('error', (err: Error & { level?: string }) => {
      debug('ssh connection error', { error: describeError(err) });
      // ssh2 drops the connection after the last unanswered keepalive.
      conn.#dropReason ??=
        err.level === 'client-timeout'
          ? `no answer to SSH keepalives for ${(keepalive.keepaliveInterval * (keepalive.keepaliveCountMax + 1)) / 1000} s (keepalive limit)`
          : describeError(err);
    });
    return conn;
  }

  /** True once the connection closed (or dropped). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Why the connection failed after it was up (keepalive limit, socket error), if it did. */
  get dropReason(): string | undefined {
    return this.#dropReason;
  }

  /** Opens an exec channel running `command` (a shell command line on the remote). */
  exec(command: string): Promise<ExecChannel> {
    if (this.#closed) {
      return Promise.reject(new StoreError(`ssh ${this.target.hostName}: connection is closed`));
    }
    return new Promise((resolve, reject) => {
      this.#client.exec(command, (err, channel) => {
        if (err)
          reject(
            new StoreError(
              `ssh ${this.target.hostName}: cannot run remote command: ${describeError(err)}`,
              { cause: err },
            ),
          );
        else resolve(channel);
      });
    });
  }

  /** Drops the connection at once (tests, emergencies): every channel closes. */
  destroy(): void {
    this.#client.destroy();
    // ssh2's destroy() skips a socket that is no longer writable, which is the case
    // after end(): a peer that stopped reading then keeps it half-closed (FIN-WAIT-1)
    // for ever, and 'close' never comes. Destroy that socket ourselves.
    const sock = (this.#client as unknown as { _sock?: { destroyed?: boolean; destroy(): void } })
      ._sock;
    if (sock && !sock.destroyed) sock.destroy();
  }

  /**
   * Closes the connection. Idempotent. A peer that does not close its side within
   * `graceMs` (a stopped sshd, a dead network) has the socket destroyed.
   */
  async close(graceMs = 5000): Promise<void> {
    if (!this.#closed) this.#client.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#closedPromise,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          debug('ssh connection did not close in time; dropping it', {
            target: this.target.hostName,
          });
          this.destroy();
          resolve();
        }, graceMs);
      }),
    ]);
    clearTimeout(timer);
    await this.#closedPromise;
  }
}
