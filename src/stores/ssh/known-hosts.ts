/**
 * OpenSSH `known_hosts` files: parsing (plain, wildcard, negated and hashed
 * `|1|salt|hmac` host fields, `[host]:port` for other ports, `@revoked`),
 * checking a server's host key against them, and the line `accept-new`
 * appends. `@cert-authority` lines are read and ignored (no host certificates).
 * As in OpenSSH, host names are lowercased before they are matched against
 * patterns, hashed, or written.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { matchPatternList } from './ssh-config.js';

/** One key line of a known_hosts file. */
export interface KnownHostEntry {
  /** File and 1-based line, for messages. */
  readonly file: string;
  readonly line: number;
  readonly marker?: 'revoked' | 'cert-authority';
  /** The host field as written (patterns or a hashed name). */
  readonly hosts: string;
  /** Key type, e.g. `ssh-ed25519`. */
  readonly keyType: string;
  /** The public key blob. */
  readonly key: Buffer;
}

/** Parses known_hosts text; unreadable lines are skipped. */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const f = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (f[0] === '@revoked' || f[0] === '@cert-authority') {
      marker = f[0] === '@revoked' ? 'revoked' : 'cert-authority';
      f.shift();
    }
    const [hosts, keyType, b64] = f;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    const key = Buffer.from(b64, 'base64');
    if (keyTypeOf(key) !== keyType) return;
    out.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  });
  return out;
}

/**
 * The name known_hosts uses for `host` on `port`: `host`, or `[host]:port`
 * when not 22; lowercased, as OpenSSH does.
 */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** The key type named inside a public key blob (its first SSH string), or undefined. */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || blob.length < 4 + n) return undefined;
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** OpenSSH's fingerprint of a key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * True when the host field of an entry names `name` (hashed or patterns).
 * `name` is lowercased first, as OpenSSH does before matching and hashing.
 */
export function hostFieldMatches(hosts: string, host: string): boolean {
  const name = host.toLowerCase();
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  return matchPatternList(hosts.split(','), name);
}

/** Outcome of {@link checkHostKey}. */
export type HostKeyCheck =
  | { readonly status: 'known'; readonly entry: KnownHostEntry }
  | { readonly status: 'changed'; readonly entries: readonly KnownHostEntry[] }
  | { readonly status: 'revoked'; readonly entry: KnownHostEntry }
  | { readonly status: 'unknown' };

/**
 * Checks `key` for host `name` (as {@link knownHostName} gives it). Contract:
 * `revoked` when the key is listed `@revoked` anywhere; `known` when an entry
 * for the host holds this exact key; `changed` when the host has entries (of
 * any key type) but none holds this key, so accept-new never adds a second
 * key for a known host; `unknown` only when the host has no entry at all.
 */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  name: string,
  key: Buffer,
): HostKeyCheck {
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const forHost = entries.filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, name));
  const match = forHost.find((e) => e.key.equals(key));
  if (match) return { status: 'known', entry: match };
  if (forHost.length > 0) return { status: 'changed', entries: forHost };
  return { status: 'unknown' };
}

/** The line accept-new appends: `name keytype base64`, the name lowercased. */
export function knownHostsLine(name: string, key: Buffer): string {
  return `${name.toLowerCase()} ${keyTypeOf(key) ?? 'unknown'} ${key.toString('base64')}\n`;
}

const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;

/**
 * Host key algorithms in the order to offer them: those whose keys are already
 * known for `name` first (as OpenSSH does, so a host known by its RSA key is
 * not reported unknown because it also has an Ed25519 key), then the rest.
 */
export function preferredHostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  name: string,
): string[] {
  const known = new Set(
    entries
      .filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, name))
      .map((e) => e.keyType),
  );
  const isKnown = (alg: string) =>
    known.has(alg) || (alg.startsWith('rsa-sha2-') && known.has('ssh-rsa'));
  return [
    ...DEFAULT_HOST_KEY_ALGORITHMS.filter(isKnown),
    ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !isKnown(a)),
  ];
}
