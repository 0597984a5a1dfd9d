/**
 * The Plan: what a sync will do, as data. It prints as text for people
 * ({@link formatPlan}) and as JSON for tools ({@link planToJSON}); the CLI runs
 * its transfers in order, then its deletes (commit comes last).
 */
import type { Warning } from '../log.js';
import { formatBytes } from '../format.js';
import type { DiffOffer, DiffProvider } from './plan-input.js';
import type { DiffSize, Volume } from './volume.js';

/** One diff to send. */
export interface Transfer extends DiffSize {
  /** The snapshot the diff creates (the source's volume: its path is where it lands). */
  readonly to: Volume;
  /** The parent it is sent from, or null for a full send. The parent is at the destination before this runs. */
  readonly from: Volume | null;
  /** The store that sends it. */
  readonly store: DiffProvider;
  /** Diffs to apply to restore `to` at a diff-storing destination since its last full send (1 = full). */
  readonly height: number;
  /** `<toUUID>_<fromUUID>`, see `edgeKey`. */
  readonly key: string;
}

/** What `--delete` removes after all transfers succeeded. */
export interface PlanDeletes {
  /** Destination snapshots (subvolume stores) no longer in the source. */
  readonly volumes: readonly Volume[];
  /** Stored diffs (diff stores) no wanted snapshot needs any more; the objects given in the input. */
  readonly diffs: readonly DiffOffer[];
}

/** A complete sync plan. Plain data; same input, same plan. */
export interface Plan {
  /** Ordered: a parent is always transferred (or already present) before its child. */
  readonly transfers: readonly Transfer[];
  /** Snapshots already at the destination and kept (wanted, or needed as parents), by path. */
  readonly keep: readonly Volume[];
  /** Empty unless `--delete`. */
  readonly deletes: PlanDeletes;
  /** Wanted snapshots no available diff can create (e.g. an S3 chain with a missing link). */
  readonly missing: readonly Volume[];
  /** Sum of transfer sizes. */
  readonly totalBytes: number;
  /** The part of `totalBytes` that is estimated. */
  readonly estimatedBytes: number;
  /** Total cost under the cost model (for comparisons and tests). */
  readonly cost: number;
  /** The destination stores diffs (heights are meaningful). */
  readonly destStoresDiffs: boolean;
  /** Things the user should know; the CLI passes them to `warn`. */
  readonly warnings: readonly Warning[];
  /** Measurement rounds run by `planWithMeasurement` (0 or absent: none). */
  readonly rounds?: number;
}

/** A plan's `totalBytes` and `estimatedBytes` for these transfers. */
export function byteTotals(
  transfers: readonly DiffSize[],
): Pick<Plan, 'totalBytes' | 'estimatedBytes'> {
  let totalBytes = 0;
  let estimatedBytes = 0;
  for (const t of transfers) {
    totalBytes += t.size;
    if (t.estimated) estimatedBytes += t.size;
  }
  return { totalBytes, estimatedBytes };
}

/** A volume as it appears in JSON output. */
export interface VolumeJSON {
  uuid: string;
  path: string;
  gen?: number;
  parentUuid?: string;
  totalSize?: number;
  exclusiveSize?: number;
}

/** {@link Plan} as JSON-safe plain data. */
export interface PlanJSON {
  totalBytes: number;
  estimatedBytes: number;
  transfers: {
    to: VolumeJSON;
    from: VolumeJSON | null;
    size: number;
    estimated: boolean;
    store: DiffProvider;
    height: number;
  }[];
  keep: VolumeJSON[];
  deletes: {
    volumes: VolumeJSON[];
    diffs: { to: string; from: string | null; size: number }[];
  };
  missing: VolumeJSON[];
  warnings: Warning[];
  rounds: number;
}

function volumeJSON(v: Volume): VolumeJSON {
  const out: VolumeJSON = { uuid: v.uuid, path: v.path };
  if (v.gen !== undefined) out.gen = v.gen;
  if (v.parentUuid !== undefined) out.parentUuid = v.parentUuid;
  if (v.totalSize !== undefined) out.totalSize = v.totalSize;
  if (v.exclusiveSize !== undefined) out.exclusiveSize = v.exclusiveSize;
  return out;
}

/** The plan as plain data for `JSON.stringify`; only known volume fields are copied. */
export function planToJSON(plan: Plan): PlanJSON {
  return {
    totalBytes: plan.totalBytes,
    estimatedBytes: plan.estimatedBytes,
    transfers: plan.transfers.map((t) => ({
      to: volumeJSON(t.to),
      from: t.from === null ? null : volumeJSON(t.from),
      size: t.size,
      estimated: t.estimated,
      store: t.store,
      height: t.height,
    })),
    keep: plan.keep.map(volumeJSON),
    deletes: {
      volumes: plan.deletes.volumes.map(volumeJSON),
      diffs: plan.deletes.diffs.map((d) => ({ to: d.to, from: d.from, size: d.size })),
    },
    missing: plan.missing.map(volumeJSON),
    warnings: plan.warnings.map((w) => ({ ...w })),
    rounds: plan.rounds ?? 0,
  };
}

/**
 * The plan as text, one line per transfer, e.g.
 *
 * ```
 * Optimal synchronization: 2 transfers (1 full, 1 incremental), 1.0 GiB (estimated)
 *   home/2024-01-01 (full, 1.0 GiB, estimated)
 *   home/2024-01-02 from home/2024-01-01 (12.3 MiB)
 * Keep 3 snapshots already at the destination
 * ```
 */
export function formatPlan(plan: Plan): string {
  const lines: string[] = [];
  const fulls = plan.transfers.filter((t) => t.from === null).length;
  if (plan.transfers.length === 0) {
    lines.push('Optimal synchronization: nothing to transfer');
  } else {
    const n = plan.transfers.length;
    const est = plan.estimatedBytes > 0 ? ' (estimated)' : '';
    lines.push(
      `Optimal synchronization: ${n} transfer${n === 1 ? '' : 's'} ` +
        `(${fulls} full, ${n - fulls} incremental), ${formatBytes(plan.totalBytes)}${est}`,
    );
  }
  for (const t of plan.transfers) {
    const facts = [
      ...(t.from === null ? ['full'] : []),
      formatBytes(t.size),
      ...(t.estimated ? ['estimated'] : []),
      ...(plan.destStoresDiffs && t.height > 1
        ? [`${t.height - 1} ancestor${t.height === 2 ? '' : 's'}`]
        : []),
    ];
    const from = t.from === null ? '' : ` from ${t.from.path}`;
    lines.push(`  ${t.to.path}${from} (${facts.join(', ')})`);
  }
  if (plan.keep.length > 0) {
    const k = plan.keep.length;
    lines.push(`Keep ${k} snapshot${k === 1 ? '' : 's'} already at the destination`);
  }
  for (const v of plan.deletes.volumes) lines.push(`Delete ${v.path}`);
  for (const d of plan.deletes.diffs) {
    lines.push(`Delete diff ${d.to}_${d.from ?? 'None'} (${formatBytes(d.size)})`);
  }
  for (const v of plan.missing) lines.push(`Missing ${v.path}: no available diff creates it`);
  return lines.join('\n');
}
