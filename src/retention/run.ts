/**
 * `--keep`: thins the destination after a successful sync, under the
 * destination's lock (taken again: the sync gave it back when it ended).
 * A subvolume destination (btrfs, SSH) deletes the snapshots the policy drops;
 * a bucket first uploads the planned re-bases (new full sends from the source,
 * through the normal transfer), lists itself again, plans again on what is
 * really there, and only then moves the idle diffs to `trash/`. With `-n` it
 * prints the same lines with "would" and changes nothing.
 */
import { warn } from '../log.js';
import { edgeKey } from '../planner/plan-input.js';
import type { Transfer } from '../planner/plan.js';
import type { Store, StoreOpOptions } from '../stores/store.js';
import type { SyncReport } from '../sync.js';
import { transfer } from '../sync.js';
import { decideRetention, notWorthSending, viewAfter } from './decide.js';
import type { RetentionPlan, RetentionSettings } from './decide.js';
import { retentionLines } from './render.js';

/** Options of {@link runRetention}. */
export interface RetentionRunOptions extends RetentionSettings {
  readonly dryRun: boolean;
  readonly signal?: AbortSignal;
  /** Gets each line of the report, newline included. */
  readonly say: (line: string) => void;
}

/** What {@link runRetention} did (with `dryRun`, would do). */
export interface RetentionResult {
  readonly plan: RetentionPlan;
  /** Paths of the snapshots deleted (subvolume stores). */
  readonly deleted: readonly string[];
  /** Re-bases uploaded (buckets). */
  readonly rebased: readonly string[];
  /** Diffs moved to trash, as the store describes them (buckets). */
  readonly trashed: readonly string[];
}

/**
 * Patterns that leave out of the sync the source snapshots `--keep` would drop
 * on arrival (see {@link notWorthSending}); one line says how many.
 */
export async function retentionExcludes(
  source: Store,
  dest: Store,
  opts: RetentionRunOptions,
): Promise<RegExp[]> {
  const sig: StoreOpOptions = opts.signal ? { signal: opts.signal } : {};
  const [srcView, dstView] = await Promise.all([
    source.view('source', sig),
    dest.view('dest', sig),
  ]);
  const skip = notWorthSending(srcView, dstView, opts);
  if (skip.length > 0) {
    opts.say(`retention: not sending ${skip.length} snapshot(s) the policy would drop\n`);
  }
  return skip.map((v) => new RegExp(`^${v.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
}

/** Applies `--keep` to `dest` after `report`'s sync (see the module header). */
export async function runRetention(
  source: Store,
  dest: Store,
  report: SyncReport,
  opts: RetentionRunOptions,
): Promise<RetentionResult> {
  if (opts.dryRun || !dest.lock) return retain(source, dest, report, opts);
  const lock = await dest.lock(opts.signal ? { signal: opts.signal } : {});
  try {
    const signal = opts.signal ? AbortSignal.any([opts.signal, lock.signal]) : lock.signal;
    return await retain(source, dest, report, { ...opts, signal });
  } finally {
    await lock.release();
  }
}

async function decide(source: Store, dest: Store, report: SyncReport, opts: RetentionRunOptions) {
  const sig: StoreOpOptions = opts.signal ? { signal: opts.signal } : {};
  const [srcView, dstView] = await Promise.all([
    source.view('source', sig),
    dest.view('dest', sig),
  ]);
  const sent = opts.dryRun
    ? report.plan.transfers.filter((t) => t.store === 'source').map((t) => t.to)
    : report.transferred.map((d) => d.transfer.to);
  return decideRetention(
    srcView,
    viewAfter(dstView, report.plan, opts.dryRun),
    dest.kind,
    sent,
    opts,
  );
}

async function retain(
  source: Store,
  dest: Store,
  report: SyncReport,
  opts: RetentionRunOptions,
): Promise<RetentionResult> {
  const sig: StoreOpOptions = opts.signal ? { signal: opts.signal } : {};
  const plan = await decide(source, dest, report, opts);
  const describe = (to: string, from: string | null) => describeDiff(dest, plan, to, from);
  for (const line of retentionLines(plan, opts, describe)) opts.say(line);
  for (const w of plan.chains?.warnings ?? []) warn('CHAIN_BROKEN', w);
  if (opts.dryRun) {
    return {
      plan,
      deleted: plan.chains ? [] : plan.decision.dropped.map((d) => d.path),
      rebased: plan.chains?.rebases.map((r) => r.volume.path) ?? [],
      trashed: plan.chains?.deleteDiffs.map((d) => describe(d.to, d.from)) ?? [],
    };
  }
  if (!plan.chains) {
    const deleted: string[] = [];
    for (const d of plan.decision.dropped) {
      opts.signal?.throwIfAborted();
      await dest.deleteVolume(d.volume, sig);
      deleted.push(d.path);
      opts.say(`deleted ${d.path}\n`);
    }
    return { plan, deleted, rebased: [], trashed: [] };
  }
  return applyOnBucket(source, dest, report, plan, opts);
}

/** Uploads the re-bases, plans again on the bucket as it now is, then trashes. */
async function applyOnBucket(
  source: Store,
  dest: Store,
  report: SyncReport,
  first: RetentionPlan,
  opts: RetentionRunOptions,
): Promise<RetentionResult> {
  const sig: StoreOpOptions = opts.signal ? { signal: opts.signal } : {};
  const rebased: string[] = [];
  for (const r of first.chains?.rebases ?? []) {
    opts.signal?.throwIfAborted();
    const to = first.sourceVolumes.get(r.volume.uuid);
    if (!to) continue;
    const t: Transfer = {
      to,
      from: null,
      size: 0,
      estimated: true,
      store: 'source',
      height: 1,
      key: edgeKey(to.uuid, null),
    };
    await transfer(source, dest, t, sig);
    rebased.push(to.path);
    opts.say(`re-based ${to.path}: uploaded a new full send\n`);
  }
  // Planned again on what is really stored now (a re-base that did not land
  // keeps its old chain): only diffs no kept chain needs go.
  const planned = first.chains?.rebases.length ?? 0;
  const plan = planned > 0 ? await decide(source, dest, report, opts) : first;
  const trashed: string[] = [];
  for (const d of plan.chains?.deleteDiffs ?? []) {
    opts.signal?.throwIfAborted();
    const where = describeDiff(dest, plan, d.to, d.from);
    await dest.deleteDiff(d, sig);
    trashed.push(where);
    opts.say(`trashed ${where}\n`);
  }
  return { plan, deleted: [], rebased, trashed };
}

function describeDiff(dest: Store, plan: RetentionPlan, to: string, from: string | null): string {
  const volumes = [
    ...plan.decision.kept.map((k) => k.item.volume),
    ...plan.decision.dropped.map((d) => d.volume),
    ...plan.excluded,
  ];
  const byUuid = new Map(volumes.map((v) => [v.uuid, v]));
  const toVol = byUuid.get(to);
  if (!toVol) return edgeKey(to, from);
  const fromVol = from === null ? null : (byUuid.get(from) ?? { uuid: from, path: from });
  return dest.describeDiff?.(toVol, fromVol) ?? `${toVol.path}/${edgeKey(to, from)}`;
}
