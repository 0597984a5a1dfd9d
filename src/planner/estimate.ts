/**
 * Size estimation policy for diffs a btrfs (or ssh) store generates, before
 * anything is measured. Estimates only steer the first plan: the measurement
 * loop (`measure-loop.ts`) probes the edges a plan would use and re-plans.
 *
 * Snapshots are grouped in families (same `parentUuid`, or same directory);
 * statistics of a family calibrate the estimates of its pairs.
 *
 * - Full send: the snapshot's qgroup total when known, else the family's mean
 *   known total, else {@link DEFAULT_FULL_SIZE}.
 * - Incremental, quotas on (both totals known): the original buttersink's
 *   formula, `max(0, total(to) − total(from)) + total(to)·(1 − e^(−rate·Δgen))`,
 *   at least `exclusive(to)`; `rate` is the family's change rate per generation
 *   derived from exclusives and size spread ({@link familyStats}).
 * - Incremental, quotas off (the common case): a fraction of the full that grows
 *   with the generation distance measured in "typical gaps" (the family's median
 *   generation step between consecutive snapshots): adjacent snapshots differ by
 *   {@link NEIGHBOUR_CHANGE_FRACTION} of the full, n gaps apart by
 *   `1 − (1 − f)^n`. Unknown generations count as {@link UNKNOWN_GEN_STEPS} gaps.
 *
 * Every incremental estimate is at least {@link MIN_DIFF_SIZE} and at most the
 * full-send estimate; it is symmetric in direction (sending an older snapshot
 * from a newer parent is as cheap as the reverse), and grows with distance, so
 * near neighbours are preferred.
 */
import type { Volume } from './volume.js';

/** Guess for a full send when no size is known: 1 GiB. */
export const DEFAULT_FULL_SIZE = 1024 ** 3;
/** Smallest estimate for any diff: stream header and metadata, 16 KiB. */
export const MIN_DIFF_SIZE = 16 * 1024;
/** Quotas off: fraction of a full that adjacent snapshots differ by. */
export const NEIGHBOUR_CHANGE_FRACTION = 0.05;
/** Quotas off: generation distance assumed, in typical gaps, when a generation is unknown. */
export const UNKNOWN_GEN_STEPS = 4;
/** Quotas on: the lowest change rate per generation (the original's). */
export const MIN_CHANGE_RATE = 0.00001;
/** Quotas on: the measured change rate is divided by this (the original's fudge factor). */
export const CHANGE_RATE_DAMPING = 10;

/** Statistics of one family of snapshots that calibrate its estimates. */
export interface FamilyStats {
  /** Every member has qgroup total and exclusive sizes. */
  readonly quotas: boolean;
  /** Quotas on: change rate per generation (≥ {@link MIN_CHANGE_RATE}). */
  readonly changeRate: number;
  /** Median generation step between consecutive members (≥ 1). */
  readonly typicalGap: number;
  /** Full-send guess for a member of unknown size. */
  readonly fullGuess: number;
}

/** Stats used when a snapshot has no family. */
export const LONE_FAMILY: FamilyStats = Object.freeze({
  quotas: false,
  changeRate: MIN_CHANGE_RATE,
  typicalGap: 1,
  fullGuess: DEFAULT_FULL_SIZE,
});

/** Computes the statistics of a family. Pure; order of `volumes` does not matter. */
export function familyStats(volumes: readonly Volume[]): FamilyStats {
  if (volumes.length === 0) return LONE_FAMILY;
  const totals = volumes.flatMap((v) => (v.totalSize === undefined ? [] : [v.totalSize]));
  const quotas =
    totals.length === volumes.length && volumes.every((v) => v.exclusiveSize !== undefined);
  const fullGuess =
    totals.length > 0 ? totals.reduce((a, b) => a + b, 0) / totals.length : DEFAULT_FULL_SIZE;
  const gens = volumes.flatMap((v) => (v.gen === undefined ? [] : [v.gen])).sort((a, b) => a - b);
  const gaps: number[] = [];
  for (let i = 1; i < gens.length; i++) {
    const gap = (gens[i] as number) - (gens[i - 1] as number);
    if (gap > 0) gaps.push(gap);
  }
  gaps.sort((a, b) => a - b);
  const typicalGap = Math.max(1, gaps.length > 0 ? (gaps[gaps.length >> 1] as number) : 1);
  let changeRate = MIN_CHANGE_RATE;
  if (quotas && gens.length >= 2) {
    const total = totals.reduce((a, b) => a + b, 0);
    const exclusives = volumes.reduce((a, v) => a + (v.exclusiveSize ?? 0), 0);
    // Exclusive sizes are often useless (data shared with read-write volumes): use the size spread too.
    const changed = Math.max(exclusives, Math.max(...totals) - Math.min(...totals));
    const span = (gens[gens.length - 1] as number) - (gens[0] as number);
    const rate =
      (-Math.log(1 - changed / total) * (volumes.length - 1)) / span / CHANGE_RATE_DAMPING;
    if (Number.isFinite(rate) && rate > MIN_CHANGE_RATE) changeRate = rate;
  }
  return { quotas, changeRate, typicalGap, fullGuess };
}

/** Estimated size of a full send of `v`. */
export function estimateFullSize(v: Volume, stats: FamilyStats = LONE_FAMILY): number {
  return Math.max(MIN_DIFF_SIZE, Math.round(v.totalSize ?? stats.fullGuess));
}

/** Estimated size of the diff creating `to` from `from` (`null`: full send). Pure. */
export function estimateDiffSize(
  to: Volume,
  from: Volume | null,
  stats: FamilyStats = LONE_FAMILY,
): number {
  const full = estimateFullSize(to, stats);
  if (from === null) return full;
  const genDist =
    to.gen !== undefined && from.gen !== undefined ? Math.abs(to.gen - from.gen) : undefined;
  let size: number;
  if (stats.quotas && to.totalSize !== undefined && from.totalSize !== undefined) {
    const dist = genDist ?? stats.typicalGap * UNKNOWN_GEN_STEPS;
    size =
      Math.max(0, to.totalSize - from.totalSize) +
      to.totalSize * (1 - Math.exp(-stats.changeRate * dist));
    size = Math.max(to.exclusiveSize ?? 0, size);
  } else {
    const steps = genDist === undefined ? UNKNOWN_GEN_STEPS : genDist / stats.typicalGap;
    size = full * (1 - (1 - NEIGHBOUR_CHANGE_FRACTION) ** steps);
  }
  return Math.round(Math.min(full, Math.max(MIN_DIFF_SIZE, size)));
}
