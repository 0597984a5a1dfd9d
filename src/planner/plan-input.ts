/**
 * What the planner is given: the two stores as plain data (their volumes, the
 * diffs they offer), the user's options and any sizes measured so far. Nothing
 * here does I/O; a store fills these objects once, then the planner runs on them.
 */
import type { CostModel } from './cost-model.js';
import type { Diff, Volume } from './volume.js';

/**
 * Kind of store. `btrfs` and `ssh` hold subvolumes and can generate any diff
 * between two of their snapshots (`btrfs send -p`); `s3` holds stored send
 * streams ("diffs") and can provide only those.
 */
export type StoreKind = 'btrfs' | 'ssh' | 's3';

/** Which side of the sync provides a diff. */
export type DiffProvider = 'source' | 'dest';

/** A diff some store can provide, with who provides it and whether the destination already holds it. */
export interface DiffOffer extends Diff {
  /** The store that provides (sends) this diff. */
  readonly store: DiffProvider;
  /**
   * True when the destination already holds this diff (an S3 object), so using
   * it transfers nothing. Always true for offers of a diff-storing destination.
   */
  readonly atDest: boolean;
}

/**
 * Estimates the size in bytes of the send stream creating `to` from `from`
 * (`null`: a full send). Must be pure and deterministic; return `undefined` (or a
 * negative or non-finite number) to fall back to the planner's default policy (see `estimate.ts`).
 */
export type SizeEstimator = (to: Volume, from: Volume | null) => number | undefined;

/** One store, as the planner sees it. */
export interface StoreView {
  /** What the store holds and whether it can generate any diff. */
  readonly kind: StoreKind;
  /** Its read-only snapshots. Order does not matter; duplicates (same UUID) keep the first by path. */
  readonly volumes: readonly Volume[];
  /**
   * Diffs it offers. For `s3` the stored streams (sizes known); for `btrfs`/`ssh`
   * optional size hints (e.g. measured sizes read from `.bs` files), used as
   * candidate edges as well. A btrfs store needs no list: the planner derives
   * O(n·k) candidate parents itself (see `graph.ts`).
   */
  readonly diffs?: readonly DiffOffer[];
  /** Optional size policy for diffs this store generates; default: `estimate.ts`. */
  readonly estimate?: SizeEstimator;
}

/** The user's choices, as the CLI's flags turn into them. */
export interface PlanOptions {
  /** `-d/--delete`: remove destination snapshots (or stored diffs) not needed for the source's set. Default false. */
  readonly delete?: boolean;
  /** Snapshots whose store-relative path matches any of these are ignored: neither sent nor deleted. */
  readonly exclude?: readonly RegExp[];
  /**
   * Single-snapshot source: the UUID or path of the one snapshot wanted.
   * The other source volumes still serve as incremental parents when the
   * destination has them. `--delete` deletes nothing in this mode (like rsync).
   */
  readonly only?: string;
  /** Candidate parents taken on each side of a snapshot among its family, by generation. Default 2. */
  readonly neighbours?: number;
  /**
   * Whether estimated edges will be measured later (the measurement loop sets
   * this). Only changes how strongly measured sizes are preferred. Default false.
   */
  readonly willMeasure?: boolean;
  /** Overrides of the cost model's constants. */
  readonly costModel?: Partial<CostModel>;
}

/** Everything one planning run needs. Same input, same plan. */
export interface PlanInput {
  readonly source: StoreView;
  readonly dest: StoreView;
  readonly options?: PlanOptions;
  /** Sizes measured so far, keyed by {@link edgeKey}; they replace any estimate for that edge. */
  readonly measured?: ReadonlyMap<string, number>;
}

/**
 * The key naming the diff that creates `to` from `from`: `<toUUID>_<fromUUID>`,
 * with `None` for a full send, as in the S3 object names (formats.md).
 */
export function edgeKey(to: string, from: string | null): string {
  return `${to}_${from ?? 'None'}`;
}

/** True when a store of this kind holds send streams rather than subvolumes. */
export function storesDiffs(kind: StoreKind): boolean {
  return kind === 's3';
}

/** True when a store of this kind can generate any diff between two of its snapshots. */
export function canSendAnyDiff(kind: StoreKind): boolean {
  return kind !== 's3';
}
