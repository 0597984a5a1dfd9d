/**
 * The sync engine: lists both stores, plans (measuring the estimated diffs the
 * plan would use unless told to estimate), then runs each planned transfer as a
 * pipeline of stages and, last, the deletes. Library users call this exactly as
 * the CLI does.
 *
 * Each transfer: source send → uuid-rewrite (effective UUIDs) → stream-verify →
 * progress → rate-limit (`bwLimit` only) → the destination's receive stages
 * (which commit last); or, where
 * the destination can copy from the source inside the service (S3 → S3), that copy.
 *
 * Local btrfs → btrfs (see {@link skipsNoOpStages}): the first two stages add
 * nothing there and are left out. uuid-rewrite maps every UUID to itself: the
 * kernel's send names each subvolume by its received UUID, else its own UUID,
 * which is exactly the effective UUID a btrfs store lists. stream-verify checks
 * command CRCs and the END a trusted local `btrfs send` writes, and `btrfs
 * receive` checks both again itself (it rejects a bad CRC and a stream cut
 * before END). The commit checks (received UUID, read-only, parent) stay.
 */
import {
  PreflightError,
  RefusedDiffsError,
  StoreError,
  StreamRefusedError,
  TransferError,
  UnsafePathError,
  describeError,
  findCause,
} from './errors.js';
import { debug, warn } from './log.js';
import { planWithMeasurement } from './planner/measure-loop.js';
import type { DiffOffer, PlanOptions, StoreView } from './planner/plan-input.js';
import type { Plan, Transfer } from './planner/plan.js';
import type { Volume } from './planner/volume.js';
import { rateLimit } from './stages/rate-limit.js';
import { streamVerify } from './stages/stream-verify.js';
import { uuidRewrite } from './stages/uuid-rewrite.js';
import { runPipeline } from './streams/pipeline.js';
import { progressTap } from './streams/progress-tap.js';
import type { Progress } from './streams/progress-tap.js';
import { fusedTransfer } from './stores/btrfs/fused-transfer.js';
import type { Store } from './stores/store.js';
import { compressedDataFor } from './stores/compressed-data.js';
import { DryRunStore } from './stores/wrappers/dry-run-store.js';

/** Options of {@link sync}. */
export interface SyncOptions {
  /** `-n`: plan and report, change nothing (both stores are seen through a {@link DryRunStore}). */
  dryRun?: boolean;
  /** `-d`: delete destination snapshots the source does not have (not in single-snapshot mode). */
  delete?: boolean;
  /** `-e`: plan with estimated sizes, measure nothing. */
  estimate?: boolean;
  /**
   * Compare the plan's size with the destination's free space before sending
   * (default true; `--no-space-check` sets false). Name clashes are always checked.
   */
  spaceCheck?: boolean;
  /** `--bwlimit`: most bytes per second a transfer moves through this machine (default: no limit). */
  bwLimit?: number;
  /** Snapshot paths matching any of these are neither sent nor deleted. */
  exclude?: readonly RegExp[];
  signal?: AbortSignal;
  /** Called once with the final plan, before anything changes. */
  onPlan?: (plan: Plan) => void;
  /** Called before each transfer starts. */
  onTransferStart?: (transfer: Transfer, index: number, count: number) => void;
  /** Progress of the running transfer (throttled). */
  onProgress?: (transfer: Transfer, progress: Progress) => void;
  /** Bytes of the running transfer the destination acknowledged as stored, where it can tell (S3). */
  onStored?: (transfer: Transfer, bytes: number) => void;
  /** Called after each transfer succeeded. */
  onTransferDone?: (done: TransferDone) => void;
  /** Called after each delete of a snapshot. */
  onDelete?: (volume: Volume) => void;
  /** Called after each delete of a stored diff. */
  onDeleteDiff?: (diff: DiffOffer) => void;
  /**
   * Keep every stage even where it is a no-op (local btrfs → btrfs; see the
   * module header). Default false; the environment variable
   * `BUTTERSINK_NO_FUSE=1` sets it too (for tests and comparisons).
   */
  noFuse?: boolean;
  /**
   * Send compressed extents as they are (protocol 2) where both stores can;
   * default true, false for `--no-compressed-data` (see stores/compressed-data.ts).
   */
  compressedData?: boolean;
}

/** A completed transfer. */
export interface TransferDone {
  readonly transfer: Transfer;
  /** Bytes of send stream moved. */
  readonly bytes: number;
  readonly seconds: number;
  /** True when the no-op stages were left out (see {@link skipsNoOpStages}). */
  readonly fused?: boolean;
  /**
   * The streams that ran in this process, in order, parsing stages that shared
   * one parse joined with `+` (e.g. `uuid-rewrite+receive-guard+uuid-rewrite`).
   * Absent when no stream passed through Node (a joined OS pipe, a server-side copy).
   */
  readonly streams?: readonly string[];
}

/**
 * True when a transfer from `source` to `dest` may leave out uuid-rewrite and
 * stream-verify (see the module header): this machine's own `btrfs send` into
 * a local btrfs store, unless `noFuse` or `BUTTERSINK_NO_FUSE=1` says otherwise.
 */
export function skipsNoOpStages(
  source: Pick<Store, 'kind'>,
  dest: Pick<Store, 'kind'>,
  opts: Pick<SyncOptions, 'noFuse'> = {},
): boolean {
  if (opts.noFuse || process.env['BUTTERSINK_NO_FUSE'] === '1') return false;
  return source.kind === 'btrfs' && dest.kind === 'btrfs';
}

/** What {@link sync} did. */
export interface SyncReport {
  readonly plan: Plan;
  readonly transferred: readonly TransferDone[];
  readonly deleted: readonly Volume[];
}

/**
 * Synchronizes `dest` with `source`. Rejects on the first failed transfer
 * (earlier transfers stay; the failed one leaves only a partial), before any
 * delete. Resolves with what was done; with `dryRun`, with the plan only.
 *
 * Unless `dryRun`, the destination's lock (when its store has one) is taken
 * before the destination is listed and released when the run ends, however it ends:
 * a second run into the same destination rejects at once with a LockedError
 * naming the first, and never sees, resumes or deletes its partials. A lock
 * lost while running (an S3 lock that could not be refreshed) stops the run.
 */
export async function sync(
  source: Store,
  dest: Store,
  opts: SyncOptions = {},
): Promise<SyncReport> {
  // A dry run sees both stores through a wrapper that changes nothing (and takes no lock).
  if (opts.dryRun) return syncUnlocked(new DryRunStore(source), new DryRunStore(dest), opts);
  if (!dest.lock) return syncUnlocked(source, dest, opts);
  const sig = opts.signal ? { signal: opts.signal } : {};
  // The source is listed while the lock is taken: its errors come first, as without a lock.
  const [srcView, locked] = await Promise.allSettled([source.view('source', sig), dest.lock(sig)]);
  if (srcView.status === 'rejected') {
    if (locked.status === 'fulfilled') await locked.value.release();
    throw srcView.reason;
  }
  if (locked.status === 'rejected') throw locked.reason;
  const lock = locked.value;
  try {
    const signal = opts.signal ? AbortSignal.any([opts.signal, lock.signal]) : lock.signal;
    return await syncUnlocked(source, dest, { ...opts, signal }, srcView.value);
  } catch (err) {
    // Say why the run stopped, rather than that it was aborted.
    if (lock.signal.aborted && !opts.signal?.aborted) throw lock.signal.reason;
    throw err;
  } finally {
    await lock.release();
  }
}

async function syncUnlocked(
  source: Store,
  dest: Store,
  opts: SyncOptions,
  listedSource?: StoreView,
): Promise<SyncReport> {
  const plan = await planRun(source, dest, opts, listedSource);
  await preflight(dest, plan, opts);
  if (opts.dryRun) return { plan, transferred: [], deleted: [] };
  const transferred = await runTransfers(source, dest, plan, opts);
  if (plan.missing.length > 0) {
    throw new StoreError(
      `${plan.missing.length} snapshot(s) cannot be transferred (no diff available): ${plan.missing
        .map((v) => v.path)
        .join(', ')}`,
    );
  }
  return { plan, transferred, deleted: await runDeletes(dest, plan, opts) };
}

/** Lists both stores and plans, measuring the diffs the plan would use (unless `estimate`). */
async function planRun(
  source: Store,
  dest: Store,
  opts: SyncOptions,
  listedSource?: StoreView,
): Promise<Plan> {
  const sig = opts.signal ? { signal: opts.signal } : {};
  const [srcView, dstView] = await Promise.all([
    listedSource ?? source.view('source', sig),
    dest.view('dest', sig),
  ]);
  const options: PlanOptions = {
    delete: opts.delete ?? false,
    ...(opts.exclude ? { exclude: opts.exclude } : {}),
    ...(source.location.snapshot !== undefined ? { only: source.location.snapshot } : {}),
  };
  const plan = await planWithMeasurement(
    { source: srcView, dest: dstView, options },
    (req) => source.measure(req.to, req.from, sig),
    { estimateOnly: opts.estimate ?? false, ...sig },
  );
  for (const w of plan.warnings) warn(w.code, w.message, w.details);
  opts.onPlan?.(plan);
  return plan;
}

/**
 * Runs the plan's transfers in order. A diff the receive guard refuses
 * (hostile or damaged) is skipped with its descendants and the rest goes on;
 * then the run rejects with a RefusedDiffsError. Any other failure rejects at once.
 */
async function runTransfers(
  source: Store,
  dest: Store,
  plan: Plan,
  opts: SyncOptions,
): Promise<TransferDone[]> {
  const transferred: TransferDone[] = [];
  const refused = new Map<string, string>();
  for (const [i, t] of plan.transfers.entries()) {
    opts.signal?.throwIfAborted();
    if (t.store !== 'source') {
      throw new StoreError(
        `cannot run transfer of ${t.to.path}: it is provided by the destination`,
      );
    }
    const where = source.describeDiff?.(t.to, t.from) ?? `${t.to.path}`;
    if (t.from && refused.has(t.from.uuid)) {
      warn('DIFF_SKIPPED', `skipping ${where}: its parent ${t.from.path} was refused`);
      refused.set(t.to.uuid, t.to.path);
      continue;
    }
    opts.onTransferStart?.(t, i, plan.transfers.length);
    try {
      const done = await transfer(source, dest, t, opts);
      transferred.push(done);
      opts.onTransferDone?.(done);
    } catch (err) {
      const refusal = findCause(err, StreamRefusedError);
      if (!refusal && !findCause(err, UnsafePathError)) throw err;
      const rule = refusal ? refusal.rule : 'path';
      warn('DIFF_REFUSED', `skipping ${where} (rule ${rule}): ${describeError(err)}`);
      refused.set(t.to.uuid, t.to.path);
    }
  }
  if (refused.size === 0) return transferred;
  throw new RefusedDiffsError(
    `${refused.size} snapshot(s) skipped because their diffs were refused: ${[...refused.values()].join(', ')}` +
      (plan.deletes.volumes.length + plan.deletes.diffs.length > 0 ? '; nothing deleted' : ''),
    { skipped: [...refused.values()], transferred },
  );
}

/** The plan's deletes at the destination: snapshots, then stored diffs. */
async function runDeletes(dest: Store, plan: Plan, opts: SyncOptions): Promise<Volume[]> {
  const sig = opts.signal ? { signal: opts.signal } : {};
  const deleted: Volume[] = [];
  for (const v of plan.deletes.volumes) {
    opts.signal?.throwIfAborted();
    await dest.deleteVolume(v, sig);
    deleted.push(v);
    opts.onDelete?.(v);
  }
  for (const d of plan.deletes.diffs) {
    opts.signal?.throwIfAborted();
    await dest.deleteDiff(d, sig);
    opts.onDeleteDiff?.(d);
  }
  return deleted;
}

/**
 * Checks before the first byte is sent that the plan can land at the
 * destination (see {@link Store.preflight}): refuses the whole run with one
 * line naming every problem (a dry run's store warns instead: see
 * {@link DryRunStore.preflight}). A problem resting on estimated sizes is only a warning.
 */
async function preflight(dest: Store, plan: Plan, opts: SyncOptions): Promise<void> {
  const transfers = plan.transfers.filter((t) => t.store === 'source');
  if (!dest.preflight || transfers.length === 0) return;
  const problems = await dest.preflight(transfers, {
    spaceCheck: opts.spaceCheck ?? true,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const refusals = problems.filter((p) => !p.warning);
  for (const p of problems) {
    if (p.warning) warn(p.code, `${p.message}; not refused: the sizes are estimated`);
  }
  if (refusals.length === 0) return;
  throw new PreflightError(`refusing to start: ${refusals.map((p) => p.message).join('; ')}`, {
    problems: refusals,
  });
}

/** Runs one planned transfer as a pipeline; see the module header for its stages. */
export async function transfer(
  source: Store,
  dest: Store,
  t: Transfer,
  opts: Pick<
    SyncOptions,
    'signal' | 'onProgress' | 'onStored' | 'noFuse' | 'compressedData' | 'bwLimit'
  > = {},
): Promise<TransferDone> {
  const sig = opts.signal ? { signal: opts.signal } : {};
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
  const copied = await dest.copyFrom?.(source, t.to, t.from, sig);
  if (copied !== undefined) return { transfer: t, bytes: copied, seconds: elapsed() };
  const compressedData = await compressedDataFor(source, dest, opts);
  const fused = skipsNoOpStages(source, dest, opts);
  // Every stage a no-op: `btrfs send` straight into `btrfs receive` (OS pipe), when exact.
  let joined;
  try {
    joined = fused ? await fusedTransfer(source, dest, t, { ...opts, compressedData }) : undefined;
  } catch (err) {
    throw new TransferError(t.to.path, err);
  }
  if (joined) return { transfer: t, bytes: joined.bytes, seconds: elapsed(), fused };
  // Only this machine's own `btrfs send` is trusted; every other stream is guarded.
  const receive = await dest.receive(t.to, t.from, {
    ...sig,
    trustedSource: source.kind === 'btrfs',
    ...(opts.onStored ? { onStored: (b: number) => opts.onStored?.(t, b) } : {}),
  });
  let bytes = 0;
  let ran;
  try {
    ran = await runPipeline(
      [
        source.send(t.to, t.from, { ...sig, compressedData }),
        progressTap({
          ...(t.size > 0 ? { total: t.size } : {}),
          onProgress: (p) => {
            bytes = p.bytes;
            opts.onProgress?.(t, p);
          },
          ...sig,
        }),
        ...(opts.bwLimit ? [rateLimit({ bytesPerSecond: opts.bwLimit, ...sig })] : []),
        // The parsing stages sit together, so that they share one parse (stream-pass.ts):
        // this rewrite, and the receive's guard and rewrite when they come first.
        ...(fused
          ? []
          : [
              uuidRewrite({
                target: { uuid: t.to.uuid },
                ...(t.from ? { parent: { uuid: t.from.uuid } } : {}),
                ...sig,
              }),
              // Not a second parse when the receive verifies by itself (guard, SSH server).
              ...(receive.verifies ? [] : [streamVerify(sig)]),
            ]),
        ...receive.transforms,
        receive.sink,
      ],
      sig,
    );
  } catch (err) {
    throw new TransferError(t.to.path, err);
  }
  debug('transfer streams', { path: t.to.path, streams: ran.streams });
  return { transfer: t, bytes, seconds: elapsed(), fused, streams: ran.streams };
}
