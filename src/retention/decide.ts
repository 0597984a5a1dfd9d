/**
 * What `--keep` does to a destination after a sync, as data: the policy's
 * decision on the destination's snapshots and, on a bucket, the chain-aware
 * plan. Pure: it works on the stores' views and the sync's report.
 *
 * The safety rule (never thinned, whatever the policy), in each series: the
 * newest snapshot this run transferred (or, with `-n`, would transfer), and
 * the newest destination snapshot the source still holds: the parent the next
 * incremental send will start from. Older snapshots sent by the same run (a
 * first run sends a whole backlog) are thinned like any other. Snapshots `--exclude` matches are neither
 * decided on nor deleted; on a bucket their chains stay whole.
 */
import { edgeKey, storesDiffs } from '../planner/plan-input.js';
import type { DiffOffer, StoreKind, StoreView } from '../planner/plan-input.js';
import type { Plan } from '../planner/plan.js';
import { planChainRetention } from '../planner/retention-plan.js';
import type { ChainRetentionPlan } from '../planner/retention-plan.js';
import { applyKeepPolicy, nameDate, seriesOf } from '../planner/retention.js';
import type { KeepPolicy, RetentionDecision, RetentionItem } from '../planner/retention.js';
import type { Volume } from '../planner/volume.js';

/** A destination snapshot as the policy sees it. */
export interface RetainedVolume extends RetentionItem {
  readonly volume: Volume;
}

/** The options of `--keep`. */
export interface RetentionSettings {
  readonly policy: KeepPolicy;
  /** `--max-chain`: longest restore chain on a bucket, in diffs. */
  readonly maxChain: number;
  readonly exclude?: readonly RegExp[];
}

/** What retention is to do at a destination. */
export interface RetentionPlan {
  readonly decision: RetentionDecision<RetainedVolume>;
  /** Snapshots `--exclude` matches: left alone. */
  readonly excluded: readonly Volume[];
  /** On a bucket: the chain-aware plan; else undefined (the dropped snapshots are deleted). */
  readonly chains?: ChainRetentionPlan<DiffOffer>;
  /** On a bucket: source volumes by UUID, to send the re-bases from. */
  readonly sourceVolumes: ReadonlyMap<string, Volume>;
}

/**
 * The destination as it will be after `plan` ran: with `dryRun` nothing was
 * transferred, so the planned transfers are added as if they had been.
 */
export function viewAfter(dest: StoreView, plan: Plan, dryRun: boolean): StoreView {
  if (!dryRun) return dest;
  const sent = plan.transfers.filter((t) => t.store === 'source');
  const known = new Set(dest.volumes.map((v) => v.uuid));
  const added: DiffOffer[] = sent.map((t) => ({
    to: t.to.uuid,
    from: t.from?.uuid ?? null,
    size: t.size,
    estimated: t.estimated,
    store: 'dest',
    atDest: true,
  }));
  return {
    ...dest,
    volumes: [...dest.volumes, ...sent.map((t) => t.to).filter((v) => !known.has(v.uuid))],
    diffs: [...(dest.diffs ?? []), ...added],
  };
}

/** In each series of `volumes`, the newest: by the date in its name, then by `gen`. */
function newestPerSeries(volumes: readonly Volume[], gen: (v: Volume) => number): Volume[] {
  const rank = (v: Volume) => [nameDate(v.path)?.getTime() ?? -1, gen(v)] as const;
  const newest = new Map<string, Volume>();
  for (const v of volumes) {
    const best = newest.get(seriesOf(v.path));
    if (!best) {
      newest.set(seriesOf(v.path), v);
      continue;
    }
    const [t, g] = rank(v);
    const [bt, bg] = rank(best);
    if (t > bt || (t === bt && g > bg)) newest.set(seriesOf(v.path), v);
  }
  return [...newest.values()];
}

/** The safety rule of the module header: UUIDs never thinned. */
export function protectedUuids(
  source: StoreView,
  dest: StoreView,
  transferred: readonly Volume[],
): Set<string> {
  const atSource = new Map(source.volumes.map((v) => [v.uuid, v]));
  const gen = (v: Volume) => atSource.get(v.uuid)?.gen ?? v.gen ?? -1;
  const common = dest.volumes.filter((v) => atSource.has(v.uuid));
  return new Set(
    [...newestPerSeries(transferred, gen), ...newestPerSeries(common, gen)].map((v) => v.uuid),
  );
}

/**
 * Decides retention at a destination (see the module header). `transferred`:
 * the snapshots this run sent (with `-n`, would send).
 */
export function decideRetention(
  source: StoreView,
  dest: StoreView,
  destKind: StoreKind,
  transferred: readonly Volume[],
  settings: RetentionSettings,
): RetentionPlan {
  const excludes = (v: Volume) => settings.exclude?.some((re) => re.test(v.path)) ?? false;
  const excluded = dest.volumes.filter(excludes);
  const items = dest.volumes
    .filter((v) => !excludes(v))
    .map((v) => ({ id: v.uuid, path: v.path, volume: v }));
  const protect = protectedUuids(source, dest, transferred);
  const decision = applyKeepPolicy(items, settings.policy, protect);
  const sourceVolumes = new Map(source.volumes.map((v) => [v.uuid, v]));
  if (!storesDiffs(destKind)) return { decision, excluded, sourceVolumes };
  const keep = new Set([...decision.kept.map((k) => k.item.id), ...excluded.map((v) => v.uuid)]);
  // A re-base is a full send from the source: it must hold the snapshot, at the same path.
  const destPath = new Map(dest.volumes.map((v) => [v.uuid, v.path]));
  const rebaseable = new Set(
    source.kind === 's3'
      ? []
      : source.volumes.filter((v) => destPath.get(v.uuid) === v.path).map((v) => v.uuid),
  );
  const seen = new Set<string>();
  const diffs = (dest.diffs ?? []).filter((d) => {
    const k = edgeKey(d.to, d.from);
    return !seen.has(k) && seen.add(k);
  });
  const chains = planChainRetention({
    volumes: dest.volumes,
    diffs,
    keep,
    rebaseable,
    maxChain: settings.maxChain,
  });
  return { decision, excluded, chains, sourceVolumes };
}

/**
 * Source snapshots not at the destination yet that the policy would drop as
 * soon as they arrived (it is applied to the destination as the sync would
 * leave it): the sync leaves them out, so a run never sends what it then
 * deletes, nor sends again what an earlier run thinned.
 */
export function notWorthSending(
  source: StoreView,
  dest: StoreView,
  settings: RetentionSettings,
): Volume[] {
  const atDest = new Set(dest.volumes.map((v) => v.uuid));
  const excludes = (v: Volume) => settings.exclude?.some((re) => re.test(v.path)) ?? false;
  const incoming = source.volumes.filter((v) => !atDest.has(v.uuid) && !excludes(v));
  const after = { ...dest, volumes: [...dest.volumes, ...incoming] };
  // The kept set does not depend on the kind: 'btrfs' leaves the chain planning out.
  const plan = decideRetention(source, after, 'btrfs', incoming, settings);
  const drop = new Set(plan.decision.dropped.map((d) => d.id));
  return incoming.filter((v) => drop.has(v.uuid));
}
