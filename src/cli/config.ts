/**
 * `buttersink`'s argv as a plain {@link ButtersinkConfig}: the only place that
 * knows its commander setup. {@link parseButtersinkArgs} is pure: it writes
 * nothing (help, version and usage errors come back as text) and reads only
 * its arguments.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { describeError } from '../errors.js';
import { parseRate } from '../stages/rate-limit.js';
import type { OpenStoreOptions } from '../stores/open-store.js';
import { UsageError } from '../errors.js';
import { parseKeepPolicy } from '../planner/retention.js';
import type { KeepPolicy } from '../planner/retention.js';
import type { ArchiveOptions } from '../stores/s3/archive-codec.js';

/** The flags of `buttersink`, as commander parsed them. */
export interface ButtersinkFlags {
  dryRun: boolean;
  delete: boolean;
  estimate: boolean;
  quiet: number;
  logfile?: string;
  verbose: boolean;
  exclude: RegExp[];
  spaceCheck: boolean;
  /** MiB. */
  partSize: number;
  proto?: '1' | '2';
  /** False with `--no-compressed-data`: send protocol 1 streams. */
  compressedData: boolean;
  endpointUrl?: string;
  region?: string;
  profile?: string;
  encrypt: boolean;
  jobs: number;
  verify: boolean;
  remoteCommand?: string;
  identity: string[];
  acceptNewHostKey: boolean;
  /** `--ssh-program`: the OpenSSH client command line as the SSH transport. */
  sshProgram?: string;
  /** Seconds. */
  timeout?: number;
  /** `--keep`: thin the destination after a successful sync (see src/retention/run.ts). */
  keep?: KeepPolicy;
  /** `--max-chain`: longest restore chain `--keep` leaves on a bucket, in diffs. */
  maxChain: number;
  /** Archive flags (`--compress`, `--encrypt-to`, …): see {@link addArchiveFlags}. */
  compress?: number;
  encryptTo: string[];
  encryptToFile: string[];
  passphraseFile?: string;
  ageIdentity: string[];
  /** `--bwlimit`: bytes per second (undefined or 0: no limit). */
  bwlimit?: number;
  /** `--json`: NDJSON events on stdout instead of text (see src/cli/json-events.ts). */
  json: boolean;
  /** `--plan-format`: how `-n` prints the plan. */
  planFormat: 'text' | 'dot';
}

/**
 * What one `buttersink` run is to do: list or verify `dst` (no source), or
 * sync `src` to `dst`.
 */
export type ButtersinkConfig =
  | { command: 'list' | 'verify'; dst: string; flags: ButtersinkFlags }
  | { command: 'sync'; src: string; dst: string; flags: ButtersinkFlags };

/**
 * The result of parsing argv: a config to run, or an exit code with the text
 * commander (help, `--version`, a usage error) would have printed.
 */
export type ParseResult =
  | { ok: true; config: ButtersinkConfig }
  | { ok: false; exitCode: number; stdout: string; stderr: string };

/**
 * Parses `buttersink`'s argv (without node and script). `version` is what
 * `--version` prints.
 */
export function parseButtersinkArgs(argv: readonly string[], version: string): ParseResult {
  const out = { stdout: '', stderr: '' };
  const program = buttersinkProgram(version).configureOutput({
    writeOut: (s) => void (out.stdout += s),
    writeErr: (s) => void (out.stderr += s),
  });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return { ok: false, exitCode: err.exitCode === 0 ? 0 : 2, ...out };
    }
    throw err;
  }
  const flags = { ...program.opts<ButtersinkFlags>() };
  const [first, second] = program.processedArgs as [string | undefined, string | undefined];
  if (first === undefined) {
    out.stderr += `buttersink: missing <dst> (see buttersink --help)\n`;
    return { ok: false, exitCode: 2, ...out };
  }
  const outputProblem = outputFlagsProblem(flags, second !== undefined);
  if (outputProblem !== undefined) {
    out.stderr += `buttersink: ${outputProblem}\n`;
    return { ok: false, exitCode: 2, ...out };
  }
  if (second !== undefined) {
    return { ok: true, config: { command: 'sync', src: first, dst: second, flags } };
  }
  return { ok: true, config: { command: flags.verify ? 'verify' : 'list', dst: first, flags } };
}

/**
 * The store options the flags ask for, for every store of the run; the caller
 * adds each store's role (which picks an SSH store's mode).
 */
export function storeOptionsOf(
  o: ButtersinkFlags,
  env: Readonly<Record<string, string | undefined>> = {},
): OpenStoreOptions {
  return {
    ...(o.proto ? { proto: Number(o.proto) as 1 | 2 } : {}),
    s3: {
      ...(o.endpointUrl !== undefined ? { endpoint: o.endpointUrl } : {}),
      ...(o.region !== undefined ? { region: o.region } : {}),
      ...(o.profile !== undefined ? { profile: o.profile } : {}),
      encrypt: o.encrypt,
      partSize: o.partSize * 1024 * 1024,
      jobs: o.jobs,
      ...(o.timeout !== undefined ? { requestTimeoutMs: o.timeout * 1000 } : {}),
      archive: archiveOptionsOf(o, env),
    },
    ssh: {
      ...(o.remoteCommand !== undefined ? { remoteCommand: o.remoteCommand } : {}),
      ...(o.identity.length > 0 ? { identityFiles: o.identity } : {}),
      acceptNewHostKey: o.acceptNewHostKey,
      ...(o.sshProgram !== undefined ? { sshProgram: o.sshProgram } : {}),
      ...(o.timeout !== undefined ? { idleTimeoutMs: o.timeout * 1000 } : {}),
    },
  };
}

function regexOption(value: string, previous: RegExp[] = []): RegExp[] {
  try {
    return [...previous, new RegExp(value)];
  } catch {
    throw new InvalidArgumentError(`not a regular expression: ${value}`);
  }
}

/** A commander parser for a whole number from `min` to `max`. */
export function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

const LOCATIONS_HELP = `
<src>, <dst>: [btrfs://]/path/to/directory/[snapshot]
             ssh://[user@]host[:port]/path/to/directory/[snapshot]
             s3://bucket/prefix/[snapshot]

If only <dst> is supplied, just list available snapshots. NOTE: The trailing
"/" *is* significant.`;

/** The commander program of `buttersink`: arguments, general flags, then each store kind's. */
function buttersinkProgram(version: string): Command {
  const program = new Command('buttersink')
    .description('Synchronize two sets of btrfs snapshots.')
    .argument('[src]', 'a source of btrfs snapshots')
    .argument('[dst]', 'the btrfs snapshots to be updated');
  addRunFlags(program);
  addRetentionFlags(program);
  addS3Flags(program);
  addSshFlags(program);
  addArchiveFlags(program);
  addOutputFlags(program);
  return program
    .version(version, '-V, --version', 'display version')
    .addHelpText('after', LOCATIONS_HELP)
    .exitOverride();
}

/** The flags of what a run does and reports, whatever the stores. */
function addRunFlags(program: Command): void {
  program
    .option('-n, --dry-run', "display what would be transferred, but don't do it", false)
    .option(
      '-d, --delete',
      'delete any snapshots in <dst> that are not in <src>; with only <dst>, delete partial transfers',
      false,
    )
    .option(
      '-e, --estimate',
      'use estimated size instead of measuring diffs with a local test send',
      false,
    )
    .option(
      '-q, --quiet',
      "once: don't display progress. twice: only display error messages",
      (_v: string, prev: number) => prev + 1,
      0,
    )
    .option('-l, --logfile <file>', 'log debugging information to file')
    .option('-v, --verbose', 'on an error, also print its stack trace to stderr', false)
    .option('--exclude <regex>', 'skip snapshots whose path matches (repeatable)', regexOption, [])
    .option(
      '--no-space-check',
      "don't refuse to start when the plan looks bigger than the destination's free space",
    )
    .addOption(
      new Option('--part-size <MB>', 'size of chunks in a multipart upload')
        .argParser(intOption(5, 5 * 1024))
        .default(16),
    )
    .addOption(new Option('--proto <n>', 'btrfs send stream version').choices(['1', '2']))
    .addOption(
      new Option(
        '--bwlimit <RATE>',
        'limit transfers to RATE KiB/s (suffixes K, M, G; as rsync; 0: no limit)',
      ).argParser((v: string) => {
        try {
          return parseRate(v) ?? 0;
        } catch (err) {
          throw new InvalidArgumentError(describeError(err));
        }
      }),
    )
    .option(
      '--no-compressed-data',
      'send file data uncompressed (protocol 1) even where both sides could send it compressed (btrfs send --compressed-data, the default where supported)',
    );
}

/** `--keep` and `--max-chain`: retention at the destination after a sync. */
function addRetentionFlags(program: Command): void {
  program
    .option(
      '--keep <rules>',
      'after a successful sync, delete destination snapshots this policy drops, e.g. latest=7,daily=14,weekly=8,monthly=12[,yearly=N] (by the date in each name; first of each period kept)',
      (value: string) => {
        try {
          return parseKeepPolicy(value);
        } catch (err) {
          throw new InvalidArgumentError(err instanceof UsageError ? err.message : String(err));
        }
      },
    )
    .addOption(
      new Option(
        '--max-chain <n>',
        'with --keep on s3://: re-base (upload a new full send) a restore chain longer than this many diffs',
      )
        .argParser(intOption(1, 100_000))
        .default(30),
    );
}

/** The flags only S3 stores read (and `--verify`, which only S3 stores have). */
function addS3Flags(program: Command): void {
  program
    .option('--endpoint-url <url>', 'S3: endpoint of an S3-compatible service (path-style)')
    .option('--region <region>', 'S3: region (default: from the AWS config, else discovered)')
    .option('--profile <name>', 'S3: AWS profile for credentials')
    .option('--no-encrypt', 'S3: upload without server-side encryption (AES256)')
    .addOption(
      new Option('--jobs <n>', 'S3: parts uploaded / ranges downloaded at once')
        .argParser(intOption(1, 64))
        .default(4),
    )
    .option('--verify', 'with only <dst> (s3://): verify every stored diff, change nothing', false);
}

/** The flags only SSH stores read, and `--timeout`, which SSH and S3 stores share. */
function addSshFlags(program: Command): void {
  program
    .option(
      '--remote-command <cmd>',
      "SSH: command starting buttersink on the remote host (default 'sudo buttersink')",
    )
    .option(
      '-i, --identity <file>',
      'SSH: private key file, tried before ~/.ssh/config and default keys (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .option(
      '--accept-new-host-key',
      'SSH: add an unknown host key to ~/.ssh/known_hosts (a changed key is always refused)',
      false,
    )
    .option(
      '--ssh-program <cmd>',
      "SSH: use this OpenSSH client command line (e.g. 'ssh' or 'ssh -F cfg') instead of the built-in client",
    )
    .addOption(
      new Option(
        '--timeout <seconds>',
        'fail when an SSH remote sends or reads nothing it should for this long (default 300), or an S3 request makes no progress (default 60, then retried); 0: no limit',
      ).argParser(intOption(0, 2_000_000)),
    );
}

/**
 * The S3 archive flags: client-side zstd compression and age encryption of uploaded
 * diffs, and the keys to decrypt them on restore (see stores/s3/archive-codec.ts).
 */
function addArchiveFlags(program: Command): void {
  const repeat = (v: string, prev: string[]) => [...prev, v];
  program
    .option(
      '--compress <zstd[:LEVEL]>',
      'S3: compress uploaded diffs with zstd (level 1-19, default 3); off by default',
      compressOption,
    )
    .option(
      '--encrypt-to <recipient>',
      'S3: encrypt uploaded diffs to this age recipient (age1…; repeatable)',
      repeat,
      [],
    )
    .option(
      '--encrypt-to-file <file>',
      'S3: encrypt to the age recipients in this file, one a line, # comments (repeatable)',
      repeat,
      [],
    )
    .option(
      '--passphrase-file <file>',
      'S3: age passphrase (first line of the file; else $BUTTERSINK_PASSPHRASE_FILE): encrypt to it without recipients, and decrypt with it',
    )
    .option(
      '--age-identity <file>',
      'S3: age identity file (AGE-SECRET-KEY-1…) to decrypt encrypted diffs (repeatable)',
      repeat,
      [],
    );
}

/** `zstd` or `zstd:LEVEL` as a level. */
function compressOption(value: string): number {
  const m = /^zstd(?::(\d{1,2}))?$/.exec(value);
  const level = m ? Number(m[1] ?? 3) : NaN;
  if (!(level >= 1 && level <= 19)) {
    throw new InvalidArgumentError('expected zstd or zstd:LEVEL with LEVEL from 1 to 19');
  }
  return level;
}

/** The archive options of the S3 stores; `env` supplies BUTTERSINK_PASSPHRASE_FILE. */
function archiveOptionsOf(
  o: ButtersinkFlags,
  env: Readonly<Record<string, string | undefined>>,
): ArchiveOptions {
  const passphraseFile = o.passphraseFile ?? (env.BUTTERSINK_PASSPHRASE_FILE || undefined);
  return {
    ...(o.compress !== undefined ? { compressLevel: o.compress } : {}),
    recipients: o.encryptTo,
    recipientFiles: o.encryptToFile,
    ...(passphraseFile !== undefined ? { passphraseFile } : {}),
    identityFiles: o.ageIdentity,
  };
}

/** The flags that choose the form of stdout: `--json`, `--plan-format`. */
function addOutputFlags(program: Command): void {
  program
    .option(
      '--json',
      'print NDJSON events on stdout (listing; sync: plan, transfers, summary) instead of text; schema/buttersink-json.schema.json',
      false,
    )
    .addOption(
      new Option('--plan-format <format>', 'with -n: print the plan as text, or as Graphviz DOT')
        .choices(['text', 'dot'])
        .default('text'),
    );
}

/** Why the output flags do not go together, or undefined when they do. */
function outputFlagsProblem(flags: ButtersinkFlags, isSync: boolean): string | undefined {
  if (flags.planFormat !== 'dot') return undefined;
  if (!isSync) return '--plan-format dot prints the plan of a sync: give <src> and <dst>';
  if (!flags.dryRun) return '--plan-format dot prints the plan only: add -n (dry run)';
  if (flags.json) return '--plan-format dot and --json both choose stdout: give one';
  return undefined;
}
