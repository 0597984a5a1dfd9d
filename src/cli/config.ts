/**
 * `buttersink`'s argv as a plain {@link ButtersinkConfig}: the only place that
 * knows its commander setup. {@link parseButtersinkArgs} is pure: it writes
 * nothing (help, version and usage errors come back as text) and reads only
 * its arguments.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { OpenStoreOptions } from '../stores/open-store.js';

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
  endpointUrl?: string;
  region?: string;
  profile?: string;
  encrypt: boolean;
  jobs: number;
  verify: boolean;
  remoteCommand?: string;
  identity: string[];
  acceptNewHostKey: boolean;
  /** Seconds. */
  timeout?: number;
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
export function storeOptionsOf(o: ButtersinkFlags): OpenStoreOptions {
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
    },
    ssh: {
      ...(o.remoteCommand !== undefined ? { remoteCommand: o.remoteCommand } : {}),
      ...(o.identity.length > 0 ? { identityFiles: o.identity } : {}),
      acceptNewHostKey: o.acceptNewHostKey,
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
  addS3Flags(program);
  addSshFlags(program);
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
        .default(100),
    )
    .addOption(new Option('--proto <n>', 'btrfs send stream version').choices(['1', '2']));
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
    .addOption(
      new Option(
        '--timeout <seconds>',
        'fail when an SSH remote sends or reads nothing it should for this long (default 300), or an S3 request makes no progress (default 60, then retried); 0: no limit',
      ).argParser(intOption(0, 2_000_000)),
    );
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
