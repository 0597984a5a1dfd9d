/**
 * The cost of using one diff (an edge) in a plan, in "byte-equivalents":
 *
 *   cost = transfer + storage + corruption risk
 *
 * - transfer: the diff's size, unless the destination already holds it;
 * - storage: size / {@link CostModel.storageDivisor} for anything newly stored,
 *   and for a diff the destination already holds when `--delete` is on (keeping
 *   it then has a price: it could otherwise be deleted);
 * - corruption risk, only for destinations that store diffs (S3): restoring a
 *   snapshot applies every diff of its chain since the last full send, and one
 *   bad object breaks all that follow. The risk is the bytes of the chain so far
 *   times 2^(height − {@link CostModel.corruptionBaseHeight}), where height is
 *   the number of diffs to apply (a full send has height 1). It doubles with
 *   every link, so a long incremental chain soon costs more than a fresh full
 *   send and the plan starts a new chain.
 *
 * Estimated sizes are multiplied by a penalty so measured sizes are preferred.
 * The constants are the original buttersink's.
 */

/** Tunable constants of the cost model. */
export interface CostModel {
  /** Storage cost = size / this. Default 16. */
  readonly storageDivisor: number;
  /** Chain height at which the corruption risk equals the chain's bytes. Default 8. */
  readonly corruptionBaseHeight: number;
  /** Factor on estimated sizes when the plan's estimated edges will be measured. Default 1.2. */
  readonly estimatePenaltyMeasuring: number;
  /** Factor on estimated sizes when they will not be measured (`--estimate`). Default 2. */
  readonly estimatePenaltyFinal: number;
}

/** The default constants. */
export const DEFAULT_COST_MODEL: Readonly<CostModel> = Object.freeze({
  storageDivisor: 16,
  corruptionBaseHeight: 8,
  estimatePenaltyMeasuring: 1.2,
  estimatePenaltyFinal: 2,
});

/** What the cost of every edge of one plan depends on. */
export interface CostContext {
  readonly model: Readonly<CostModel>;
  /** `--delete` is on. */
  readonly deleting: boolean;
  /** The destination stores diffs (S3): the corruption-risk term applies and costs depend on the chain. */
  readonly destStoresDiffs: boolean;
  /** Estimated edges will be measured later (smaller penalty). */
  readonly willMeasure: boolean;
}

/** One edge's cost inputs. */
export interface EdgeCostInput {
  /** Diff size in bytes. */
  readonly size: number;
  /** True when `size` is an estimate. */
  readonly estimated: boolean;
  /** The destination already holds this diff (no transfer, no new storage). */
  readonly atDest: boolean;
  /** Chain height of the parent at the destination (0 for none or a complete subvolume). */
  readonly parentHeight: number;
  /** Bytes of the parent's diff chain since its last full send (0 for none or a complete subvolume). */
  readonly parentChainBytes: number;
}

/** Builds a context with the default model overridden by `model`. */
export function costContext(opts: {
  model?: Partial<CostModel> | undefined;
  deleting?: boolean | undefined;
  destStoresDiffs?: boolean | undefined;
  willMeasure?: boolean | undefined;
}): CostContext {
  return {
    model: { ...DEFAULT_COST_MODEL, ...opts.model },
    deleting: opts.deleting ?? false,
    destStoresDiffs: opts.destStoresDiffs ?? false,
    willMeasure: opts.willMeasure ?? false,
  };
}

/** The size the cost model charges for: the size, times the estimate penalty when estimated. */
export function chargedSize(size: number, estimated: boolean, ctx: CostContext): number {
  if (!estimated) return size;
  return (
    size * (ctx.willMeasure ? ctx.model.estimatePenaltyMeasuring : ctx.model.estimatePenaltyFinal)
  );
}

/** Cost of using one edge, given its parent's state at the destination. Pure; never negative. */
export function edgeCost(e: EdgeCostInput, ctx: CostContext): number {
  const size = chargedSize(e.size, e.estimated, ctx);
  let cost = 0;
  if (!e.atDest) cost += size;
  if (!e.atDest || ctx.deleting) cost += size / ctx.model.storageDivisor;
  if (ctx.destStoresDiffs) {
    const height = e.parentHeight + 1;
    cost += (e.parentChainBytes + size) * 2 ** (height - ctx.model.corruptionBaseHeight);
  }
  return cost;
}
