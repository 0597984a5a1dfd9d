/**
 * What the `btrfs send` and `btrfs receive` stages share about their child
 * process: the teardown order (kill first, then close the pipe, and report only
 * once the child has been reaped).
 */
import type { BtrfsChild } from '../btrfs/exec.js';

/** A pipe end of the child, as the stages hold it. */
interface Closable {
  destroy(): unknown;
}

/**
 * Stops `child`: SIGTERM (relayed by `sudo`; SIGKILL after 5 s), then closes
 * `pipe` (before the child is reaped when `closeFirst`, after otherwise) and
 * resolves once the child has been reaped, whatever its exit. A receiver's
 * stdin is closed only after it is gone, so it never sees an EOF it could
 * take for the end of a truncated stream; a sender's stdout may close at once.
 */
export async function killAndReap(
  child: BtrfsChild,
  pipe: Closable | undefined,
  closeFirst: boolean,
): Promise<void> {
  child.kill('SIGTERM');
  if (closeFirst) pipe?.destroy();
  await child.done.catch(() => undefined);
  if (!closeFirst) pipe?.destroy();
}
