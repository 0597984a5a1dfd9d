/**
 * Small builders for hand-made planner inputs.
 */
import type {
  DiffOffer,
  PlanInput,
  PlanOptions,
  StoreKind,
} from '../../../src/planner/plan-input.js';
import type { Volume } from '../../../src/planner/volume.js';

/** A volume with UUID `u:<path>`. */
export function vol(path: string, gen?: number, extra: Partial<Volume> = {}): Volume {
  return { uuid: `u:${path}`, path, ...(gen === undefined ? {} : { gen }), ...extra };
}

/** A diff offer between two volumes (from null: full). */
export function offer(
  to: Volume,
  from: Volume | null,
  size: number,
  opts: { store?: 'source' | 'dest'; estimated?: boolean } = {},
): DiffOffer {
  const store = opts.store ?? 'source';
  return {
    to: to.uuid,
    from: from === null ? null : from.uuid,
    size,
    estimated: opts.estimated ?? false,
    store,
    atDest: store === 'dest',
  };
}

/** An input from parts. */
export function input(parts: {
  source: Volume[];
  sourceKind?: StoreKind;
  sourceDiffs?: DiffOffer[];
  dest?: Volume[];
  destKind?: StoreKind;
  destDiffs?: DiffOffer[];
  options?: PlanOptions;
  estimate?: (to: Volume, from: Volume | null) => number | undefined;
}): PlanInput {
  return {
    source: {
      kind: parts.sourceKind ?? 'btrfs',
      volumes: parts.source,
      ...(parts.sourceDiffs ? { diffs: parts.sourceDiffs } : {}),
      ...(parts.estimate ? { estimate: parts.estimate } : {}),
    },
    dest: {
      kind: parts.destKind ?? 'btrfs',
      volumes: parts.dest ?? [],
      ...(parts.destDiffs ? { diffs: parts.destDiffs } : {}),
    },
    ...(parts.options ? { options: parts.options } : {}),
  };
}

/** Transfers as `to<-from` strings (`to<-` for a full), in plan order. */
export function edges(plan: {
  transfers: readonly { to: Volume; from: Volume | null }[];
}): string[] {
  return plan.transfers.map((t) => `${t.to.path}<-${t.from?.path ?? ''}`);
}
