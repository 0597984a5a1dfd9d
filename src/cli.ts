/**
 * The command-line front end: `buttersink`, `checksumdir`, `btrfslist`. It
 * parses flags (commander lives only here), turns them into the library's
 * option objects once, runs the library, and reports. Exit codes: 0 success,
 * 1 failure, 2 usage error. One AbortController per run; SIGINT/SIGTERM abort it.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ButtersinkError, NotRootError, UsageError, describeError } from './errors.js';
import { isRoot } from './btrfs/exec.js';
import { btrfsList, formatBtrfsList } from './btrfslist.js';
import { describeDifferences, runChecksumdir, verifyChecksumdir } from './checksumdir/index.js';
import { consoleLogger, debug, setLogger } from './log.js';
import type { Logger } from './log.js';
import { formatBytes } from './format.js';
import { formatPlan } from './planner/plan.js';
import { openStore } from './stores/open-store.js';
import { S3Store } from './stores/s3/s3-store.js';
import { scrubStore } from './stores/s3/scrub.js';
import { parseLocation } from './stores/uri.js';
import { serverMain } from './server/server-main.js';
import type { ServerMode } from './wire/protocol.js';
import type { Store } from './stores/store.js';
import { sync } from './sync.js';
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

/** Runs one command with the process's signals wired to an AbortController; returns the exit code. */
async function withAbort(io: CliIo, fn: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (name: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    io.stderr.write(`\nbuttersink: ${name}: stopping (partial transfers are left as *.part)\n`);
    controller.abort(new Error(`interrupted by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function reportError(io: CliIo, prog: string, err: unknown): number {
  const msg = describeError(err);
  io.stderr.write(`${prog}: ${msg}\n`);
  debug('error', { error: err instanceof Error ? (err.stack ?? msg) : String(err) });
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

async function listStore(
  io: CliIo,
  store: Store,
  opts: { delete: boolean; dryRun: boolean; quiet: number },
  signal: AbortSignal,
) {
  const view = await store.view('dest', { signal });
  if (view.kind === 's3') {
    const paths = new Map(view.volumes.map((v) => [v.uuid, v.path]));
    const diffs = [...(view.diffs ?? [])].sort((a, b) =>
      (paths.get(a.to) ?? '').localeCompare(paths.get(b.to) ?? ''),
    );
    let bytes = 0;
    for (const d of diffs) {
      bytes += d.size;
      const from = d.from === null ? 'full' : `from ${paths.get(d.from) ?? d.from}`;
      io.stdout.write(`${d.to}  ${paths.get(d.to)}  ${from}  ${formatBytes(d.size)}\n`);
    }
    io.stdout.write(`TOTAL: ${diffs.length} diff(s), ${formatBytes(bytes)}\n`);
  } else {
    const rows = [...view.volumes].sort((a, b) => a.path.localeCompare(b.path));
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
  const o = program.opts<{
    dryRun: boolean;
    delete: boolean;
    estimate: boolean;
    quiet: number;
    logfile?: string;
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
  }>();
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
    return reportError(io, 'buttersink', err);
  }
  const previous = setLogger(logger);
  debug('start', { argv: [...argv] });
  const stores: Store[] = [];
  try {
    return await withAbort(io, async (signal) => {
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
      const sshOpts = (mode: ServerMode) => ({
        ...storeOpts,
        ssh: {
          mode,
          ...(o.remoteCommand !== undefined ? { remoteCommand: o.remoteCommand } : {}),
          ...(o.identity.length > 0 ? { identityFiles: o.identity } : {}),
          acceptNewHostKey: o.acceptNewHostKey,
          ...(o.timeout !== undefined ? { idleTimeoutMs: o.timeout * 1000 } : {}),
        },
      });
      const dstLoc = parseLocation(dstArg);
      if (srcArg === undefined) {
        const store = openStore(dstLoc, sshOpts(o.delete ? 'w' : 'r'));
        stores.push(store);
        if (o.verify) return await verifyStore(io, store, o.quiet, signal);
        // Deleting partials: never those of a run that is writing the store now.
        const lock = o.delete && !o.dryRun ? await store.lock?.({ signal }) : undefined;
        try {
          return await listStore(
            io,
            store,
            { delete: o.delete, dryRun: o.dryRun, quiet: o.quiet },
            signal,
          );
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
      const progress = progressLine(io);
      const say = (s: string) => {
        if (o.quiet < 2) io.stdout.write(s);
      };
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
            `sent ${d.transfer.to.path}${from}: ${formatBytes(d.bytes)} in ${d.seconds.toFixed(1)} s (${formatBytes(d.bytes / Math.max(d.seconds, 1e-3))}/s)\n`,
          );
        },
        onDelete: (v) => say(`deleted ${v.path}\n`),
      });
      if (o.dryRun) say('dry run: nothing changed\n');
      else if (report.transferred.length === 0 && report.deleted.length === 0)
        say('nothing to do\n');
      return 0;
    });
  } catch (err) {
    if (
      srcArg !== undefined &&
      !srcArg.endsWith('/') &&
      err instanceof ButtersinkError &&
      /no such directory|not a directory|not found in the source/.test(err.message)
    ) {
      io.stderr.write(`buttersink: ${describeError(err)}\n`);
      io.stderr.write(
        `buttersink: hint: a source without a trailing '/' is one snapshot; for a directory of snapshots write ${srcArg}/\n`,
      );
      return err instanceof UsageError ? 2 : 1;
    }
    return reportError(io, 'buttersink', err);
  } finally {
    await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    setLogger(previous);
    logger.close?.();
  }
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
  try {
    return await withAbort(io, async (signal) => {
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
    });
  } catch (err) {
    return reportError(io, 'checksumdir', err);
  }
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
