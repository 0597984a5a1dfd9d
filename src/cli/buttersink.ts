/**
 * `buttersink`: argv to config ({@link parseButtersinkArgs}), then one command
 * (list, verify, sync) with its stores opened for their roles, the logger set,
 * and signals wired. The hidden `--server` entry goes to the server.
 */
import { RemoteError, UsageError } from '../errors.js';
import type { LocationProblem } from '../errors.js';
import { consoleLogger, debug, setLogger } from '../log.js';
import type { Logger } from '../log.js';
import { loadStore } from '../stores/load-store.js';
import type { StoreRole } from '../stores/store-options.js';
import type { Store } from '../stores/store.js';
import { parseLocation } from '../stores/uri.js';
import type { Location } from '../stores/uri.js';
import { withAbort } from './abort.js';
import { parseButtersinkArgs, storeOptionsOf } from './config.js';
import type { ButtersinkConfig } from './config.js';
import { defaultIo, version } from './io.js';
import type { CliIo } from './io.js';
import { errorEvent, jsonLine } from './json-events.js';
import { runList } from './list.js';
import { reportError } from './report-error.js';
import { runSync } from './sync.js';
import { runVerify } from './verify.js';

/** `buttersink [options] [<src>] <dst>`: returns the exit code. */
export async function buttersinkMain(
  argv: readonly string[],
  io: CliIo = defaultIo,
): Promise<number> {
  // The AWS SDK warns on every run that it will drop Node 20; that is for developers, not users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // The hidden server entry an SSH client starts on the remote host: stdout is its data channel.
  // Loaded only then, as each store's module is (see loadStore): a local run loads neither.
  if (argv.includes('--server')) {
    const { serverMain } = await import('../server/server-main.js');
    return serverMain(argv, io.stderr);
  }
  const parsed = parseButtersinkArgs(argv, version());
  if (!parsed.ok) {
    io.stdout.write(parsed.stdout);
    io.stderr.write(parsed.stderr);
    return parsed.exitCode;
  }
  const { config } = parsed;
  const { flags } = config;
  let logger: Logger;
  try {
    logger = consoleLogger({
      quiet: flags.quiet >= 2,
      ...(flags.logfile ? { logfile: flags.logfile } : {}),
    });
  } catch (err) {
    return reportError(io, 'buttersink', err, { verbose: flags.verbose });
  }
  const previous = setLogger(logger);
  debug('start', { argv: [...argv] });
  const stores: Store[] = [];
  try {
    const srcArg = config.command === 'sync' ? config.src : undefined;
    let failure: { err: unknown } | undefined;
    const code = await withAbort(
      io,
      (signal) => runCommand(io, config, stores, signal),
      (err) => {
        failure = { err };
        const reported = reportError(io, 'buttersink', err, { srcArg, verbose: flags.verbose });
        return exitStatusOf(err, reported);
      },
    );
    if (flags.json && failure) io.stdout.write(jsonLine(errorEvent(failure.err, code, srcArg)));
    return code;
  } finally {
    await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    setLogger(previous);
    logger.close?.();
  }
}

/**
 * Opens the stores `config` names (each pushed to `stores`, for the caller to
 * close) and runs its command; returns the exit code.
 */
async function runCommand(
  io: CliIo,
  config: ButtersinkConfig,
  stores: Store[],
  signal: AbortSignal,
): Promise<number> {
  const { flags } = config;
  const base = storeOptionsOf(flags, process.env);
  const open = async (location: Location, role: StoreRole) => {
    const deletes = flags.delete || flags.keep !== undefined;
    const store = await loadStore(location, { ...base, role, deletes });
    stores.push(store);
    return store;
  };
  const dstLoc = parseLocation(config.dst);
  if (config.command !== 'sync') {
    const store = await open(dstLoc, 'inspect');
    if (config.command === 'verify') return runVerify(io, store, flags, signal);
    return runList(io, store, flags, signal);
  }
  const srcLoc = parseLocation(config.src);
  if (dstLoc.snapshot !== undefined) {
    throw new UsageError(
      `${config.dst}: a destination is a directory; add the trailing '/' (${config.dst}/)`,
    );
  }
  const source = await open(srcLoc, 'source');
  const dest = await open(dstLoc, 'dest');
  return runSync(io, flags, source, dest, signal);
}

/** The location problems a remote server reports by code, as a local store throws them. */
const LOCATION_PROBLEMS: ReadonlySet<string> = new Set<LocationProblem>([
  'NO_SUCH_DIRECTORY',
  'NOT_A_DIRECTORY',
  'SNAPSHOT_NOT_FOUND',
  'SNAPSHOT_AS_DIRECTORY',
  'READ_WRITE_SUBVOLUME',
  'EMPTY_SOURCE',
]);

/**
 * The exit status of `err`, given the one {@link reportError} chose: a location
 * problem the remote server reported over SSH (a missing remote directory)
 * exits 2, as the same problem with a local directory does.
 */
export function exitStatusOf(err: unknown, reported: number): number {
  const remote = (err as { remoteCode?: unknown } | null)?.remoteCode;
  const isLocation = err instanceof RemoteError && typeof remote === 'string';
  return isLocation && LOCATION_PROBLEMS.has(remote) ? 2 : reported;
}
