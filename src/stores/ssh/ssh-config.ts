/**
 * The subset of OpenSSH's `ssh_config(5)` an SSH store honours: `Host`
 * blocks with `*`, `?` and `!` patterns, and `HostName` (with `%h`), `User`,
 * `Port`, `IdentityFile` (repeatable, `~` and `%d %u %h %r %%` expanded),
 * `IdentitiesOnly`, `UserKnownHostsFile`. As in OpenSSH the first value
 * obtained for a keyword wins (IdentityFile accumulates); `Match` blocks are
 * skipped, other keywords ignored. A maintained parser (npm `ssh-config`)
 * would be preferred; it is not a dependency of this project.
 */
import { UsageError } from '../../errors.js';

/** One `Host` block (or the leading global block, patterns `['*']`). */
export interface SshConfigBlock {
  readonly patterns: readonly string[];
  /** Keyword (lower case) → values in file order; one entry per line. */
  readonly options: ReadonlyArray<readonly [string, string]>;
}

/** What the config says about one host. */
export interface SshHostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  identitiesOnly?: boolean;
  userKnownHostsFiles?: string[];
}

/** Splits a config line into keyword and values (`Key value`, `Key=value`, double quotes). */
function words(line: string): string[] {
  const m = /^([^\s=]+)(?:\s*=\s*|\s+)?(.*)$/.exec(line);
  if (!m) return [];
  const out = [m[1]!];
  const re = /"([^"]*)"|(\S+)/g;
  let w: RegExpExecArray | null;
  while ((w = re.exec(m[2] ?? ''))) out.push(w[1] ?? w[2] ?? '');
  return out;
}

/** Parses config text into blocks. Lines it cannot read are skipped. */
export function parseSshConfig(text: string): SshConfigBlock[] {
  const blocks: { patterns: string[]; options: [string, string][] }[] = [
    { patterns: ['*'], options: [] },
  ];
  let current: (typeof blocks)[number] | undefined = blocks[0];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const w = words(line);
    const key = w[0]?.toLowerCase();
    if (key === undefined) continue;
    if (key === 'host') {
      current = { patterns: w.slice(1), options: [] };
      blocks.push(current);
    } else if (key === 'match') {
      current = undefined;
    } else if (current) {
      current.options.push([key, w.slice(1).join(' ')]);
    }
  }
  return blocks;
}

/** True when `name` matches the glob `pattern` (`*` any run, `?` one character), case-insensitively. */
export function matchPattern(pattern: string, name: string): boolean {
  const re = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name.toLowerCase());
}

/** True when a pattern list (`Host` line, comma-separated known_hosts field) matches: a `!` match vetoes. */
export function matchPatternList(patterns: readonly string[], name: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (matchPattern(p.slice(1), name)) return false;
    } else if (matchPattern(p, name)) matched = true;
  }
  return matched;
}

/** Facts for `%` tokens and `~`. */
export interface ExpandContext {
  home: string;
  /** Local user name (`%u`). */
  localUser: string;
  /** Host name after HostName (`%h`). */
  host: string;
  /** Remote user (`%r`). */
  remoteUser: string;
}

/** Expands `~/`, `%d`, `%u`, `%h`, `%r`, `%%` in a path. */
export function expandPath(path: string, ctx: ExpandContext): string {
  const p = path.replace(/%([%duhr])/g, (_m, t: string) =>
    t === '%'
      ? '%'
      : t === 'd'
        ? ctx.home
        : t === 'u'
          ? ctx.localUser
          : t === 'h'
            ? ctx.host
            : ctx.remoteUser,
  );
  if (p === '~') return ctx.home;
  return p.startsWith('~/') ? ctx.home + p.slice(1) : p;
}

/**
 * Collects the options for host `alias` (as written in the URI). Contract:
 * blocks are read in order, a keyword keeps its first value, IdentityFile and
 * UserKnownHostsFile values accumulate / split on spaces as in OpenSSH; `%h`
 * in HostName becomes `alias`. Paths are returned unexpanded.
 * @throws {UsageError} for a Port that is not 1–65535.
 */
export function hostConfig(blocks: readonly SshConfigBlock[], alias: string): SshHostConfig {
  const out: SshHostConfig = { identityFiles: [] };
  const seen = new Set<string>();
  for (const b of blocks) {
    if (!matchPatternList(b.patterns, alias)) continue;
    for (const [key, value] of b.options) {
      if (key === 'identityfile') {
        if (value !== '' && !out.identityFiles.includes(value)) out.identityFiles.push(value);
        continue;
      }
      if (seen.has(key)) continue;
      seen.add(key);
      switch (key) {
        case 'hostname':
          out.hostName = value.replace(/%h/g, alias);
          break;
        case 'user':
          out.user = value;
          break;
        case 'port': {
          const n = Number(value);
          if (!Number.isInteger(n) || n < 1 || n > 65535) {
            throw new UsageError(`ssh config: bad Port '${value}' for host ${alias}`);
          }
          out.port = n;
          break;
        }
        case 'identitiesonly':
          out.identitiesOnly = value.toLowerCase() === 'yes';
          break;
        case 'userknownhostsfile':
          out.userKnownHostsFiles = value.split(/\s+/).filter((f) => f !== '');
          break;
      }
    }
  }
  return out;
}
