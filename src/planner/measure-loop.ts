/**
 * The measure-and-replan driver. Plans with estimates, measures the estimated
 * edges that plan would use, re-plans with the measured sizes, and repeats
 * until the plan's measured total is within a tolerance of its estimate or
 * every edge it uses is measured. The only effect is the injected `measure`
 * callback (a store's size probe); everything else is `planSync`.
 */
import { UsageError } from '../errors.js';
import { byteTotals } from './plan.js';
import type { Plan, Transfer } from './plan.js';
import type { PlanInput } from './plan-input.js';
import { planSync } from './plan-sync.js';
import type { Volume } from './volume.js';

/** One edge to measure. */
export interface MeasureRequest {
  /** `<toUUID>_<fromUUID>`, the key measured sizes are stored under. */
  readonly key: string;
  readonly to: Volume;
  /** Parent, or null for a full send. */
  readonly from: Volume | null;
  /** The current estimate in bytes. */
  readonly estimate: number;
}

/** Measures one edge; resolves with its size in bytes (finite, ≥ 0). */
export type MeasureFn = (req: MeasureRequest) => Promise<number>;

/** Options of {@link planWithMeasurement}. */
export interface MeasureOptions {
  /** `-e/--estimate`: plan with estimates only, measure nothing. Default false. */
  readonly estimateOnly?: boolean;
  /** Most measuring rounds; the last one measures its plan's edges and stops. Default 4, at least 1. */
  readonly maxRounds?: number;
  /** Accept a plan when |measured − estimated| ≤ tolerance × estimated (its total). Default 0.2. */
  readonly tolerance?: number;
  /** Checked before each measurement. */
  readonly signal?: AbortSignal;
}

function withSizes(plan: Plan, measured: ReadonlyMap<string, number>, rounds: number): Plan {
  const transfers: Transfer[] = plan.transfers.map((t) => {
    const size = measured.get(t.key);
    return size === undefined ? t : { ...t, size, estimated: false };
  });
  return { ...plan, transfers, ...byteTotals(transfers), rounds };
}

/**
 * Plans `input`, measuring estimated edges through `measure` (sequentially, in
 * transfer order, so runs are reproducible). Each round: plan; if nothing it
 * uses is estimated, done; else measure those edges; if the plan's total with
 * measured sizes is within `tolerance` of its estimated total, or this was the
 * last round, return that plan with its measured sizes; otherwise re-plan.
 * Sizes already in `input.measured` are reused and never measured again.
 * Rejects with what `measure` rejects with, with `signal.reason` when aborted,
 * and with `UsageError` when `measure` returns a negative or non-finite size.
 */
export async function planWithMeasurement(
  input: PlanInput,
  measure: MeasureFn,
  opts: MeasureOptions = {},
): Promise<Plan> {
  const options = { ...input.options, willMeasure: !opts.estimateOnly };
  if (opts.estimateOnly) return { ...planSync({ ...input, options }), rounds: 0 };
  const maxRounds = Math.max(1, Math.floor(opts.maxRounds ?? 4));
  const tolerance = opts.tolerance ?? 0.2;
  const measured = new Map<string, number>(input.measured ?? []);
  for (let round = 1; ; round++) {
    const plan = planSync({ ...input, options, measured });
    const pending = plan.transfers.filter((t) => t.estimated && !measured.has(t.key));
    if (pending.length === 0) return { ...plan, rounds: round - 1 };
    for (const t of pending) {
      opts.signal?.throwIfAborted();
      const size = await measure({ key: t.key, to: t.to, from: t.from, estimate: t.size });
      if (!Number.isFinite(size) || size < 0) {
        throw new UsageError(`size probe returned ${size} bytes for ${t.to.path}`);
      }
      measured.set(t.key, size);
    }
    const result = withSizes(plan, measured, round);
    if (
      round >= maxRounds ||
      Math.abs(result.totalBytes - plan.totalBytes) <= tolerance * plan.totalBytes
    ) {
      return result;
    }
  }
}
