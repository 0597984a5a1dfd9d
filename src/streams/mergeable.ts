/**
 * Mergeable stages: transform stages whose work can share one pass over the
 * bytes with their neighbours (the send-stream stages share one parse), so that
 * adjacent ones run as one stream instead of one stream each.
 *
 * A mergeable stage builds its own stream only when something asks for it
 * (`stage.stream`). Before that, {@link mergeAdjacent} may replace a run of
 * adjacent mergeable stages that share one `merge` function by the one stage
 * that function builds; that stage settles each member's `result` as the
 * member's own stream would have (same values, same error).
 */
import type { Stage, TransformStage } from './stage.js';

/** Builds one stage doing the work of `stages` (adjacent, in order) and settling their results. */
export type MergeFunction = (stages: readonly MergeableStage<unknown>[]) => TransformStage<unknown>;

/** A transform stage that may be merged with adjacent stages sharing its `merge` function. */
export interface MergeableStage<R = unknown> extends TransformStage<R> {
  readonly merging: {
    /** Stages with the same function may merge; it builds the merged stage. */
    readonly merge: MergeFunction;
    /** True once the stage's stream exists (asked for, or merged): then it cannot merge again. */
    readonly built: boolean;
  };
}

/** Whether `stage` is a {@link MergeableStage} that has not built its stream yet. */
export function canMerge(stage: Stage<unknown>): stage is MergeableStage<unknown> {
  const merging = (stage as Partial<MergeableStage>).merging;
  return stage.kind === 'transform' && merging !== undefined && !merging.built;
}

/**
 * The stages to run for `stages`: each run of two or more adjacent stages that
 * can merge with the same function replaced by the one stage it builds; every
 * other stage as it is. The members' `result` promises still settle (from the
 * merged stage), so callers read results from the original list.
 */
export function mergeAdjacent(stages: readonly Stage<unknown>[]): Stage<unknown>[] {
  const out: Stage<unknown>[] = [];
  let i = 0;
  while (i < stages.length) {
    const first = stages[i]!;
    const merge = canMerge(first) ? first.merging.merge : undefined;
    let j = i + 1;
    while (merge && j < stages.length) {
      const next = stages[j]!;
      if (!canMerge(next) || next.merging.merge !== merge) break;
      j++;
    }
    if (merge && j - i >= 2) {
      out.push(merge(stages.slice(i, j) as MergeableStage<unknown>[]));
    } else {
      out.push(first);
    }
    i = j;
  }
  return out;
}
