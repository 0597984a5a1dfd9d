/** One AbortController per run, aborted by SIGINT or SIGTERM. */
import { constants as osConstants } from 'node:os';
import { AbortedError } from '../errors.js';
import type { CliIo } from './io.js';

/**
 * Runs one command with the process's signals wired to an AbortController;
 * returns the exit code. A run stopped by SIGINT or SIGTERM exits 128 + the
 * signal's number (130, 143), as shells and rsync do, once `fn` has settled
 * (children killed, the running receive left as a partial: `*.part`, a
 * `.<name>.receiving` marker, or an open S3 upload); `onError` reports
 * what `fn` threw and chooses the code otherwise. A second signal exits at once.
 */
export async function withAbort(
  io: CliIo,
  fn: (signal: AbortSignal) => Promise<number>,
  onError: (err: unknown) => number,
): Promise<number> {
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    if (stoppedBy !== undefined) process.exit(signalExitCode(name));
    stoppedBy = name;
    io.stderr.write(
      `\nbuttersink: ${name}: stopping (the transfer under way is left as a partial that never looks complete; the next run replaces or resumes it)\n`,
    );
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
