/**
 * The fused local transfer: this machine's own `btrfs send` joined straight to
 * `btrfs receive` by an OS pipe (`streams/os-pipe.ts`), no byte through Node.
 *
 * When it applies (else {@link fusedTransfer} returns undefined, having written
 * nothing, and the caller runs the stage pipeline): source and destination are
 * both local btrfs stores (the stream is trusted: no guard), and the receive
 * needs no rewrite: a full send, or an incremental whose parent `btrfs receive`
 * finds exactly (see {@link BtrfsStore.fusedReceive}). The stages the pipeline
 * would run all have nothing to do here: uuid-rewrite maps every UUID to itself
 * and stream-verify checks what `btrfs receive` checks itself (see `sync.ts`);
 * the progress tap is replaced by the kernel's count of what the receiver read.
 *
 * Nothing partial looks complete: the receive lands in place under a marker,
 * removed only after both processes exited 0 and the subvolume is read-only
 * with the expected received UUID and parent (see `receiving-marker.ts`). A
 * kill at any point leaves the marker, so the subvolume stays a partial until
 * the next run (or `-d`) removes it and receives it again.
 */
import { CommandError } from '../../errors.js';
import type { Transfer } from '../../planner/plan.js';
import type { BtrfsChild } from '../../btrfs/exec.js';
import { joinProcesses } from '../../streams/os-pipe.js';
import type { Progress } from '../../streams/progress-tap.js';
import type { Store } from '../store.js';
import { BtrfsStore } from './btrfs-store.js';

/** Options of {@link fusedTransfer}. */
export interface FusedTransferOptions {
  signal?: AbortSignal;
  onProgress?: (transfer: Transfer, progress: Progress) => void;
  /** Send compressed extents as they are (see `BtrfsStore.send`). */
  compressedData?: boolean;
}

/**
 * Runs `t` from `source` to `dest` fused (see the module header), resolving
 * with the bytes the receiver read; undefined when it does not apply.
 * Failures reject as the pipeline's would (a receive failure as a
 * ReceiveError naming the partial).
 */
export async function fusedTransfer(
  source: Store,
  dest: Store,
  t: Transfer,
  opts: FusedTransferOptions = {},
): Promise<{ bytes: number } | undefined> {
  if (!(source instanceof BtrfsStore) || !(dest instanceof BtrfsStore)) return undefined;
  const sig = opts.signal ? { signal: opts.signal } : {};
  const receive = await dest.fusedReceive(t.to, t.from, sig);
  if (!receive) return undefined;
  let receiver: BtrfsChild | undefined;
  try {
    const joined = await joinProcesses(
      () => source.spawnSend(t.to, t.from, opts.compressedData ? { compressedData: true } : {}),
      (stdin) => (receiver = receive.spawn(stdin)),
      {
        ...sig,
        ...(t.size > 0 ? { total: t.size } : {}),
        onProgress: (p) => opts.onProgress?.(t, p),
        // A receiver that died (disk full) breaks the sender's pipe: its error says why.
        // The sender dies of SIGPIPE, or reports the write error itself: EPIPE (32),
        // or ECONNRESET (104) as Node's stdio pipes are socket pairs.
        brokenPipe: (err) =>
          err instanceof CommandError &&
          ((err.cause as { signal?: unknown } | undefined)?.signal === 'SIGPIPE' ||
            err.exitCode === 32 ||
            err.exitCode === 104 ||
            /Broken pipe|Connection reset by peer/.test(err.stderr)),
      },
    );
    await receive.commit();
    return { bytes: joined.bytes };
  } catch (err) {
    const fromReceiver = await receiver?.done.then(
      () => false,
      (e: unknown) => e === err,
    );
    // The caller wraps it with the snapshot's path (TransferError).
    throw fromReceiver && err instanceof CommandError ? await receive.failure(err) : err;
  }
}
