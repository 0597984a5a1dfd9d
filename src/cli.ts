/**
 * The command-line front end: `buttersink`, `checksumdir`, `btrfslist`. It
 * parses flags (commander lives only here), turns them into the library's
 * option objects once, runs the library, and reports. Exit codes: 0 success,
 * 1 failure, 2 usage error. One AbortController per run; SIGINT/SIGTERM abort it.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { constants as osConstants } from 'node:os';
import {
  AbortedError,
  CredentialsError,
  LocationError,
  NotRootError,
  RemoteError,
  UsageError,
  describeError,
} from './errors.js';
import { isRoot } from './btrfs/exec.js';
import { btrfsList, formatBtrfsList } from './btrfslist.js';
import { describeDifferences, runChecksumdir, verifyChecksumdir } from './checksumdir/index.js';
import { consoleLogger, debug, setLogger, warn } from './log.js';
import type { Logger } from './log.js';
import { formatBytes } from './format.js';
import { formatPlan } from './planner/plan.js';
import { openStore } from './stores/open-store.js';
import { S3Store } from './stores/s3/s3-store.js';
import { scrubStore } from './stores/s3/scrub.js';
import { parseLocation } from './stores/uri.js';
import { serverMain } from './server/server-main.js';
import type { ServerMode } from './wire/protocol.js';
import type { StoreView } from './planner/plan-input.js';
import type { Store } from './stores/store.js';
import { sync } from './sync.js';
import type { SyncReport } from './sync.js';
import type { Progress } from './streams/progress-tap.js';
import { statusLine } from './streams/status-line.js';

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

const defaultIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function regexOption(value: string, previous: RegExp[] = []): RegExp[] {
  try {
    return [...previous, new RegExp(value)];
  } catch {
    throw new InvalidArgumentError(`not a regular expression: ${value}`);
  }
}

function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/**
 * Runs one command with the process's signals wired to an AbortController;
 * returns the exit code. A run stopped by SIGINT or SIGTERM exits 128 + the
 * signal's number (130, 143), as shells and rsync do, once `fn` has settled
 * (children killed, the running receive left as `*.part`); `onError` reports
 * what `fn` threw and chooses the code otherwise. A second signal exits at once.
 */
async function withAbort(
  io: CliIo,
  fn: (signal: AbortSignal) => Promise<number>,
  onError: (err: unknown) => number,
): Promise<number> {
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    if (stoppedBy !== undefined) process.exit(signalExitCode(name));
    stoppedBy = name;
    io.stderr.write(`\nbuttersink: ${name}: stopping (partial transfers are left as *.part)\n`);
    controller.abort(new AbortedError(`interrupted by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code: number;
  try {
    code = await fn(controller.signal);
  } catch (err) {
    code = onError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return stoppedBy === undefined ? code : signalExitCode(stoppedBy);
}

/** 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM. */
function signalExitCode(name: NodeJS.Signals): number {
  return 128 + (osConstants.signals[name] ?? 0);
}

/**
 * The fix to suggest for `err`, chosen by its class and code (never by its
 * text); undefined when there is none. `srcArg`: the source as typed.
 */
function hintFor(err: unknown, srcArg: string | undefined): string | undefined {
  const location = err instanceof LocationError ? err.code : remoteCode(err);
  if (
    srcArg !== undefined &&
    !srcArg.endsWith('/') &&
    (location === 'NO_SUCH_DIRECTORY' ||
      location === 'NOT_A_DIRECTORY' ||
      location === 'SNAPSHOT_NOT_FOUND')
  ) {
    return `a source without a trailing '/' is one snapshot; for a directory of snapshots write ${srcArg}/`;
  }
  const noCredentials = (e: unknown) =>
    e instanceof CredentialsError || (e as Error | null)?.name === 'CredentialsProviderError';
  if (causes(err).some(noCredentials)) {
    return 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (--profile), or write ~/.aws/credentials (aws configure)';
  }
  if (err instanceof RemoteError && err.exitCode === 127) {
    return "give the remote buttersink's command line with --remote-command (default 'sudo buttersink')";
  }
  return undefined;
}

/** The error code a remote server reported, for errors that came over SSH. */
function remoteCode(err: unknown): string | undefined {
  const code = (err as { remoteCode?: unknown } | null)?.remoteCode;
  return err instanceof RemoteError && typeof code === 'string' ? code : undefined;
}

/** `err` and its chain of `cause`s, outermost first (at most 10). */
function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err; e !== undefined && chain.length < 10; e = (e as { cause?: unknown }).cause) {
    chain.push(e);
    if (!(e instanceof Error)) break;
  }
  return chain;
}

/**
 * Prints `err` as one line, with the fix {@link hintFor} suggests; the stack
 * (and its causes') goes to the `--logfile`, and to stderr only with
 * `verbose` (`-v`). Returns the exit code: 2 for usage errors, else 1.
 */
function reportError(
  io: CliIo,
  prog: string,
  err: unknown,
  opts: { srcArg?: string | undefined; verbose?: boolean } = {},
): number {
  const msg = describeError(err);
  const hint = hintFor(err, opts.srcArg);
  io.stderr.write(`${prog}: ${msg}${hint ? `; ${hint}` : ''}\n`);
  const stacks = causes(err)
    .map((e) => (e instanceof Error ? (e.stack ?? e.message) : String(e)))
    .join('\nCaused by: ');
  debug('error', { error: stacks });
  if (opts.verbose) io.stderr.write(`${stacks}\n`);
  if (err instanceof UsageError) return 2;
  return 1;
}

function progressLine(io: CliIo) {
  const status = statusLine(io.stderr);
  return {
    update(label: string, p: Progress, estimated: boolean) {
      if (!status.enabled) return;
      const total =
        p.total !== undefined ? ` of ${estimated ? '~' : ''}${formatBytes(p.total)}` : '';
      const eta = p.etaMs !== undefined && !p.done ? `, ${Math.ceil(p.etaMs / 1000)} s left` : '';
      status.draw(`  ${label}: ${formatBytes(p.bytes)}${total} at ${formatBytes(p.rate)}/s${eta}`);
    },
    clear: () => status.clear(),
  };
}

/**
 * Lists a store on stdout. A location naming one snapshot (no trailing `/`)
 * lists what lies at that path: the snapshot, or what is below it as whole
 * path segments (`backups` never matches `backups2/…`). An S3 prefix holding
 * nothing, or a path with nothing at it, gets a warning saying so.
 */
async function listStore(
  io: CliIo,
  store: Store,
  opts: { delete: boolean; dryRun: boolean; quiet: number },
  signal: AbortSignal,
) {
  const view = await store.view('dest', { signal });
  const only = store.location.snapshot;
  const inScope = (path: string | undefined) =>
    only === undefined || path === only || (path ?? '').startsWith(`${only}/`);
  if (view.volumes.length === 0 && store instanceof S3Store) {
    warn('S3_EMPTY_PREFIX', await store.describeEmpty({ signal }));
  }
  const shown = view.kind === 's3' ? listDiffs(io, view, inScope) : listVolumes(io, view, inScope);
  if (shown === 0 && only !== undefined && view.volumes.length > 0) {
    warn(
      'NOTHING_AT_PATH',
      `${store.location.uri}: nothing at this path (no snapshot ${only}, nor any below it)`,
    );
  }
  const partials = await store.listPartials({ signal });
  const deleting = opts.delete && !opts.dryRun;
  for (const p of partials) {
    const what = opts.delete ? (deleting ? ' (deleting)' : ' (would delete)') : '';
    io.stdout.write(`partial: ${p.where}${what}\n`);
  }
  if (partials.length > 0 && !opts.delete && opts.quiet < 2) {
    io.stderr.write(
      `buttersink: ${partials.length} partial transfer(s) found; run with -d to delete them\n`,
    );
  }
  if (deleting && partials.length > 0) await store.deletePartials(partials, { signal });
  return 0;
}

/** Prints the stored diffs `inScope` keeps, one line each, and a TOTAL; returns how many. */
function listDiffs(io: CliIo, view: StoreView, inScope: (path: string | undefined) => boolean) {
  const paths = new Map(view.volumes.map((v) => [v.uuid, v.path]));
  const diffs = [...(view.diffs ?? [])]
    .filter((d) => inScope(paths.get(d.to)))
    .sort((a, b) => (paths.get(a.to) ?? '').localeCompare(paths.get(b.to) ?? ''));
  let bytes = 0;
  for (const d of diffs) {
    bytes += d.size;
    const from = d.from === null ? 'full' : `from ${paths.get(d.from) ?? d.from}`;
    io.stdout.write(`${d.to}  ${paths.get(d.to)}  ${from}  ${formatBytes(d.size)}\n`);
  }
  io.stdout.write(`TOTAL: ${diffs.length} diff(s), ${formatBytes(bytes)}\n`);
  return diffs.length;
}

/** Prints the snapshots `inScope` keeps, one line each, and a TOTAL; returns how many. */
function listVolumes(io: CliIo, view: StoreView, inScope: (path: string | undefined) => boolean) {
  const rows = view.volumes
    .filter((v) => inScope(v.path))
    .sort((a, b) => a.path.localeCompare(b.path));
  let total = 0;
  for (const v of rows) {
    const size = v.totalSize !== undefined ? formatBytes(v.totalSize) : '-';
    const excl =
      v.exclusiveSize !== undefined ? ` (${formatBytes(v.exclusiveSize)} exclusive)` : '';
    total += v.exclusiveSize ?? 0;
    io.stdout.write(`${v.uuid}  ${v.path}  ${size}${excl}\n`);
  }
  io.stdout.write(
    `TOTAL: ${rows.length} snapshot(s)${total > 0 ? `, ${formatBytes(total)} exclusive` : ''}\n`,
  );
  return rows.length;
}

/** `--verify`: scrubs an S3 store; exit 1 when a diff is bad. */
async function verifyStore(io: CliIo, store: Store, quiet: number, signal: AbortSignal) {
  if (!(store instanceof S3Store)) {
    throw new UsageError('--verify checks stored diffs: give an s3:// location');
  }
  const report = await scrubStore(store, {
    signal,
    onDiff: (d, r) => {
      if (r.ok && quiet === 0) {
        io.stdout.write(`ok   ${store.uriOf(d.key)}${r.note ? ` (info: ${r.note})` : ''}\n`);
      }
      if (!r.ok) io.stdout.write(`BAD  ${store.uriOf(d.key)}: ${r.error}\n`);
    },
  });
  io.stdout.write(
    `verified ${report.checked} diff(s), ${formatBytes(report.bytes)}: ${report.bad.length} bad\n`,
  );
  return report.bad.length > 0 ? 1 : 0;
}

/** `buttersink [options] [<src>] <dst>`: returns the exit code. */
export async function buttersinkMain(
  argv: readonly string[],
  io: CliIo = defaultIo,
): Promise<number> {
  // The AWS SDK warns on every run that it will drop Node 20; that is for developers, not users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // The hidden server entry an SSH client starts on the remote host: stdout is its data channel.
  if (argv.includes('--server')) return serverMain(argv, io.stderr);
  const program = new Command('buttersink')
    .description('Synchronize two sets of btrfs snapshots.')
    .argument('[src]', 'a source of btrfs snapshots')
    .argument('[dst]', 'the btrfs snapshots to be updated')
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
    .addOption(new Option('--proto <n>', 'btrfs send stream version').choices(['1', '2']))
    .option('--endpoint-url <url>', 'S3: endpoint of an S3-compatible service (path-style)')
    .option('--region <region>', 'S3: region (default: from the AWS config, else discovered)')
    .option('--profile <name>', 'S3: AWS profile for credentials')
    .option('--no-encrypt', 'S3: upload without server-side encryption (AES256)')
    .addOption(
      new Option('--jobs <n>', 'S3: parts uploaded / ranges downloaded at once')
        .argParser(intOption(1, 64))
        .default(4),
    )
    .option('--verify', 'with only <dst> (s3://): verify every stored diff, change nothing', false)
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
    )
    .version(version(), '-V, --version', 'display version')
    .addHelpText(
      'after',
      `
<src>, <dst>: [btrfs://]/path/to/directory/[snapshot]
             ssh://[user@]host[:port]/path/to/directory/[snapshot]
             s3://bucket/prefix/[snapshot]

If only <dst> is supplied, just list available snapshots. NOTE: The trailing
"/" *is* significant.`,
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const o = program.opts<ButtersinkFlags>();
  const args = program.processedArgs as [string | undefined, string | undefined];
  if (args[0] === undefined) {
    io.stderr.write(`buttersink: missing <dst> (see buttersink --help)\n`);
    return 2;
  }
  const [srcArg, dstArg] = args[1] === undefined ? [undefined, args[0]] : [args[0], args[1]];
  let logger: Logger;
  try {
    logger = consoleLogger({
      quiet: o.quiet >= 2,
      ...(o.logfile ? { logfile: o.logfile } : {}),
    });
  } catch (err) {
    return reportError(io, 'buttersink', err, { verbose: o.verbose });
  }
  const previous = setLogger(logger);
  debug('start', { argv: [...argv] });
  const stores: Store[] = [];
  try {
    return await withAbort(
      io,
      async (signal) => {
        const sshOpts = storeOptions(o);
        const dstLoc = parseLocation(dstArg);
        if (srcArg === undefined) {
          const store = openStore(dstLoc, sshOpts(o.delete ? 'w' : 'r'));
          stores.push(store);
          if (o.verify) return await verifyStore(io, store, o.quiet, signal);
          // Deleting partials: never those of a run that is writing the store now.
          const lock = o.delete && !o.dryRun ? await store.lock?.({ signal }) : undefined;
          try {
            return await listStore(io, store, o, signal);
          } finally {
            await lock?.release();
          }
        }
        const srcLoc = parseLocation(srcArg);
        if (dstLoc.snapshot !== undefined) {
          throw new UsageError(
            `${dstArg}: a destination is a directory; add the trailing '/' (${dstArg}/)`,
          );
        }
        const source = openStore(srcLoc, sshOpts('r'));
        stores.push(source);
        const dest = openStore(dstLoc, sshOpts(o.delete ? 'w' : 'a'));
        stores.push(dest);
        return await runSync(io, o, source, dest, signal);
      },
      (err) => reportError(io, 'buttersink', err, { srcArg, verbose: o.verbose }),
    );
  } finally {
    await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    setLogger(previous);
    logger.close?.();
  }
}

/** The flags of `buttersink`, as commander parsed them. */
interface ButtersinkFlags {
  dryRun: boolean;
  delete: boolean;
  estimate: boolean;
  quiet: number;
  logfile?: string;
  verbose: boolean;
  exclude: RegExp[];
  spaceCheck: boolean;
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
  timeout?: number;
}

/** The store options the flags ask for; an SSH store's mode is given per role. */
function storeOptions(o: ButtersinkFlags) {
  const storeOpts = {
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
  };
  // Each SSH store asks the remote for the least mode its role needs (one sudoers line per mode).
  return (mode: ServerMode) => ({
    ...storeOpts,
    ssh: {
      mode,
      ...(o.remoteCommand !== undefined ? { remoteCommand: o.remoteCommand } : {}),
      ...(o.identity.length > 0 ? { identityFiles: o.identity } : {}),
      acceptNewHostKey: o.acceptNewHostKey,
      ...(o.timeout !== undefined ? { idleTimeoutMs: o.timeout * 1000 } : {}),
    },
  });
}

/**
 * Syncs and reports on stdout: the plan, one line per transfer ("sent", or
 * "received" when a local btrfs destination restores from S3 or SSH), one per
 * delete, and a closing summary. Returns the exit code.
 */
async function runSync(
  io: CliIo,
  o: ButtersinkFlags,
  source: Store,
  dest: Store,
  signal: AbortSignal,
): Promise<number> {
  const progress = progressLine(io);
  const say = (s: string) => {
    if (o.quiet < 2) io.stdout.write(s);
  };
  const verb = dest.kind === 'btrfs' && source.kind !== 'btrfs' ? 'received' : 'sent';
  const started = performance.now();
  const report = await sync(source, dest, {
    dryRun: o.dryRun,
    delete: o.delete,
    estimate: o.estimate,
    exclude: o.exclude,
    spaceCheck: o.spaceCheck,
    signal,
    onPlan: (plan) => say(formatPlan(plan) + '\n'),
    onProgress: (t, p) => {
      if (o.quiet === 0) progress.update(t.to.path, p, t.estimated);
    },
    onTransferDone: (d) => {
      progress.clear();
      const from = d.transfer.from ? ` from ${d.transfer.from.path}` : ' (full)';
      say(
        `${verb} ${d.transfer.to.path}${from}: ${formatBytes(d.bytes)} in ${d.seconds.toFixed(1)} s (${formatBytes(d.bytes / Math.max(d.seconds, 1e-3))}/s)\n`,
      );
    },
    onDelete: (v) => say(`deleted ${v.path}\n`),
  });
  if (o.dryRun) say('dry run: nothing changed\n');
  else if (report.transferred.length === 0 && report.deleted.length === 0) say('nothing to do\n');
  else say(syncSummary(report, (performance.now() - started) / 1000) + '\n');
  return 0;
}

/**
 * The closing line of a sync that changed something, `seconds` being the whole
 * run's: `3 snapshot(s), 1.2 GiB transferred in 14.2 s` (plus `, 2 deleted`).
 */
function syncSummary(report: SyncReport, seconds: number): string {
  const bytes = report.transferred.reduce((n, d) => n + d.bytes, 0);
  const deleted = report.deleted.length > 0 ? `, ${report.deleted.length} deleted` : '';
  return `${report.transferred.length} snapshot(s), ${formatBytes(bytes)} transferred in ${seconds.toFixed(1)} s${deleted}`;
}

function simpleProgram(name: string, description: string, io: CliIo): Command {
  return new Command(name)
    .description(description)
    .version(version(), '-V, --version', 'display version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
}

function parseOrExit(program: Command, argv: readonly string[]): number | undefined {
  try {
    program.parse(argv, { from: 'user' });
    return undefined;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
}

/** `checksumdir [--verify] <dir>...`: returns the exit code. */
export async function checksumdirMain(
  argv: readonly string[],
  io: CliIo = defaultIo,
): Promise<number> {
  const program = simpleProgram(
    'checksumdir',
    'Checksum all data and key metadata of directories (NAME.ls, NAME.files, NAME.sha256sum in the current directory).',
    io,
  )
    .argument('<dir...>', 'directories to record')
    .option(
      '--verify',
      'compare each <dir> with the NAME.ls/NAME.files recorded earlier (in --records or .)',
      false,
    )
    .option('--records <dir>', 'where the record files are (default: current directory)')
    .option('-q, --quiet', 'no progress line', false);
  const early = parseOrExit(program, argv);
  if (early !== undefined) return early;
  const o = program.opts<{ verify: boolean; records?: string; quiet: boolean }>();
  const dirs = program.processedArgs[0] as string[];
  const progress = o.quiet
    ? {}
    : { progress: io.stderr as unknown as import('node:stream').Writable };
  return withAbort(
    io,
    async (signal) => {
      if (!o.verify) {
        const r = await runChecksumdir({
          dirs,
          signal,
          ...progress,
          ...(o.records ? { outDir: o.records } : {}),
        });
        for (const d of r.dirs) {
          io.stdout.write(
            `${d.name}: ${d.counts.entries} entries, ${d.counts.files} files, ${formatBytes(d.counts.bytes)}\n`,
          );
        }
        return r.exitCode;
      }
      let code = 0;
      for (const dir of dirs) {
        const r = await verifyChecksumdir({
          dir,
          signal,
          ...progress,
          ...(o.records ? { recordDir: o.records } : {}),
        });
        for (const line of describeDifferences(r.differences)) io.stdout.write(`${line}\n`);
        if (r.recordsIntact === false)
          io.stdout.write(`records of ${dir} do not match their .sha256sum\n`);
        io.stdout.write(`${dir}: ${r.identical ? 'identical' : 'DIFFERS'}\n`);
        if (r.exitCode !== 0) code = 1;
      }
      return code;
    },
    (err) => reportError(io, 'checksumdir', err),
  );
}

/** `btrfslist [--json] <dir>`: returns the exit code. */
export async function btrfslistMain(
  argv: readonly string[],
  io: CliIo = defaultIo,
): Promise<number> {
  const program = simpleProgram(
    'btrfslist',
    'Show the subvolumes of a btrfs filesystem with UUIDs, generations and sizes.',
    io,
  )
    .argument('<dir>', 'a directory on the btrfs filesystem')
    .option('--json', 'print JSON for scripts', false);
  const early = parseOrExit(program, argv);
  if (early !== undefined) return early;
  const dir = program.processedArgs[0] as string;
  try {
    if (!isRoot()) throw new NotRootError('must be root to access a btrfs filesystem');
    const listing = await btrfsList(dir);
    io.stdout.write(
      program.opts<{ json: boolean }>().json
        ? JSON.stringify(listing, null, 2) + '\n'
        : formatBtrfsList(listing),
    );
    return 0;
  } catch (err) {
    return reportError(io, 'btrfslist', err);
  }
}

/**
 * Ends the process quietly when the reader of stdout goes away
 * (`buttersink --help | head`), as command-line tools do, instead of crashing on EPIPE.
 */
export function exitOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
