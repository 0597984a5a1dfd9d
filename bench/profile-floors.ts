/**
 * The design floors a profiled scenario is compared with (issue 12: "what the
 * floor is on this machine for that design"), each a command doing only what
 * the design cannot avoid, derived from the scenario's own commands. The
 * baseline itself, the floor of the plain design, is always profiled and is
 * not listed here. A floor that cannot be derived (a command of another shape
 * than expected) is named in `notes` instead. Pure: builds command lines only.
 */
import type { FloorSpec } from './profile.js';

/** What the floors are derived from. */
export interface FloorContext {
  /** Bench group of the scenario. */
  group: string;
  name: string;
  project: string;
  baseline: string;
  reset?: string;
  /** Absolute path of node. */
  node: string;
  /** Repository root, with a trailing slash. */
  repo: string;
  /** The command prefix that runs the buttersink CLI (`<node> <repo>dist/bin/buttersink.js`). */
  cli: string;
}

/** The floors and why any expected one is missing. */
export interface Floors {
  floors: FloorSpec[];
  notes: string[];
}

/** `a | b` → `a | <node pass-through> | b` at the first pipe; undefined without one. */
export function passThrough(baseline: string, node: string): string | undefined {
  const at = baseline.indexOf(' | ');
  if (at < 0) return undefined;
  const pass = `${node} -e 'process.stdin.pipe(process.stdout)'`;
  return `${baseline.slice(0, at)} | ${pass} | ${baseline.slice(at + 3)}`;
}

/** The CLI's start-up (`--version`: module loading, no work) followed by the plain command. */
export function startupThenPlain(ctx: FloorContext): FloorSpec {
  return {
    name: 'CLI start-up + plain',
    what: 'the buttersink CLI started and stopped (`--version`), then the baseline: a design that adds only its start-up',
    command: `${ctx.cli} --version >/dev/null && { ${ctx.baseline}; }`,
  };
}

/** ssh2's transport alone, from a baseline `<source> | ssh -F <config> <host> <remote command>`. */
export function ssh2Floor(ctx: FloorContext): FloorSpec | undefined {
  const m = /^(.*?) \| ssh -F (\S+) (\S+) (.+)$/.exec(ctx.baseline);
  if (!m) return undefined;
  const [, source, config, host, remote] = m;
  return {
    name: 'ssh2 transport alone',
    what: 'the same stream through ssh2 (its defaults) in one Node process, no buttersink on either side (bench/profile-ssh2-pipe.mjs): the transport’s cost',
    command: `${source} | ${ctx.node} ${ctx.repo}bench/profile-ssh2-pipe.mjs ${config} ${host} '${remote!.replace(/'/g, `'\\''`)}'`,
  };
}

/**
 * The plain OpenSSH pipe with a bare Node process copying the stream on each
 * end, from a baseline `<source> | ssh -F <config> <host> <remote command>`:
 * the floor of any design that moves the bytes through Node on both sides.
 */
export function sshPassThroughFloor(ctx: FloorContext): FloorSpec | undefined {
  const m = /^(.*?) \| ssh -F (\S+) (\S+) (.+)$/.exec(ctx.baseline);
  if (!m) return undefined;
  const [, source, config, host, remote] = m;
  const pass = `${ctx.node} -e 'process.stdin.pipe(process.stdout)'`;
  return {
    name: 'Node pass-through at both ends',
    what: 'the plain pipe with a bare Node process copying the stream before `ssh` and another after it on the remote side: the floor of any design that moves the bytes through Node on both ends',
    command: `${source} | ${pass} | ssh -F ${config} ${host} "${pass} | ${remote!.replace(/(["\\$`])/g, '\\$1')}"`,
  };
}

/** The SDK's multipart upload alone, from a baseline `<source> | aws --endpoint-url E s3 cp - s3://B/K`. */
export function s3UploadFloor(ctx: FloorContext): FloorSpec | undefined {
  const m = /^(.*?) \| aws --endpoint-url (\S+) s3 cp - s3:\/\/([^/\s]+)\/(\S+)/.exec(ctx.baseline);
  if (!m) return undefined;
  const [, source, endpoint, bucket, key] = m;
  const part = /--part-size[ =](\d+)/.exec(ctx.project)?.[1] ?? '100';
  const jobs = /--jobs[ =](\d+)/.exec(ctx.project)?.[1] ?? '4';
  return {
    name: 'AWS SDK upload alone',
    what: `the same stream uploaded by @aws-sdk/client-s3 alone, ${jobs} parts of ${part} MiB at once (bench/profile-s3-put.mjs): no parsing, no own hashing`,
    command: `${source} | ${ctx.node} ${ctx.repo}bench/profile-s3-put.mjs ${endpoint} ${bucket} floor-${key} ${part} ${jobs}`,
  };
}

/** The SDK's download alone, from a baseline `aws --endpoint-url E s3 cp s3://B/K - … | <receive>`. */
export function s3DownloadFloor(ctx: FloorContext): FloorSpec | undefined {
  const m = /aws --endpoint-url (\S+) s3 cp s3:\/\/([^/\s]+)\/(\S+) - (?:--quiet )?\| (.+)$/.exec(
    ctx.baseline,
  );
  if (!m) return undefined;
  const [, endpoint, bucket, key, sink] = m;
  return {
    name: 'AWS SDK download alone',
    what: 'one GetObject by @aws-sdk/client-s3 piped into the same receive (bench/profile-s3-get.mjs): no parsing, no checks',
    command: `${ctx.node} ${ctx.repo}bench/profile-s3-get.mjs ${endpoint} ${bucket} ${key} | ${sink}`,
  };
}

/** The floors of a scenario of `ctx.group`; see the file comment. */
export function floorsFor(ctx: FloorContext): Floors {
  const floors: FloorSpec[] = [];
  const notes: string[] = [];
  const want = (f: FloorSpec | undefined, what: string) => {
    if (f) floors.push(f);
    else notes.push(`No ${what} floor: the baseline command has another shape than expected.`);
  };
  if (ctx.group === 'rerun') {
    floors.push({
      name: 'Node start-up',
      what: '`node -e 0`: the least any Node CLI costs',
      command: `${ctx.node} -e 0`,
    });
  }
  if (ctx.project.includes(ctx.cli)) floors.push(startupThenPlain(ctx));
  if (ctx.group === 'pipe' || ctx.group === 'sync') {
    const pass = passThrough(ctx.baseline, ctx.node);
    want(
      pass === undefined
        ? undefined
        : {
            name: 'Node pass-through',
            what: 'the plain pipe with a bare Node process copying stdin to stdout in the middle: the floor of any design that moves the bytes through Node',
            command: pass,
          },
      'Node pass-through',
    );
  }
  if (ctx.group === 'ssh' && !/openssh|ssh-program/i.test(ctx.name)) want(ssh2Floor(ctx), 'ssh2');
  if (ctx.group === 'ssh') want(sshPassThroughFloor(ctx), 'Node pass-through at both ends');
  if (ctx.group === 's3' && /btrfs → S3/.test(ctx.name)) want(s3UploadFloor(ctx), 'SDK upload');
  if (ctx.group === 's3' && /S3.*→ btrfs/.test(ctx.name))
    want(s3DownloadFloor(ctx), 'SDK download');
  return { floors, notes };
}
