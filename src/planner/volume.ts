/**
 * Volumes and diffs: the nouns every store and the planner share.
 */

/** A read-only snapshot as a store knows it. */
export interface Volume {
  /** Effective UUID: the received UUID when the snapshot was received, else its own UUID. */
  readonly uuid: string;
  /**
   * The subvolume's own UUID when it differs from `uuid` (a received snapshot):
   * the UUID `btrfs send` may write into streams, which uuid-rewrite maps to `uuid`.
   */
  readonly ownUuid?: string;
  /** Path relative to its store, `/`-separated, no leading slash, e.g. `home/2024-01-01`. */
  readonly path: string;
  /** Generation (ctransid or the sent generation), when known; higher is newer. */
  readonly gen?: number;
  /** btrfs `parent_uuid`: the subvolume this one was snapshotted from, when known. */
  readonly parentUuid?: string;
  /** Total referenced bytes (qgroups), when known. */
  readonly totalSize?: number;
  /** Exclusive bytes (qgroups), when known. */
  readonly exclusiveSize?: number;
}

/** A send stream that creates `to` from `from` (`from === null`: a full send). */
export interface Diff extends DiffSize {
  /** Effective UUID of the snapshot the diff creates. */
  readonly to: string;
  /** Effective UUID of the parent, or null for a full send. */
  readonly from: string | null;
}

/** The size of a diff's send stream, and whether it is only estimated. */
export interface DiffSize {
  /** Size in bytes: measured when `estimated` is false. */
  readonly size: number;
  /** True while `size` is an estimate that a probe could refine. */
  readonly estimated: boolean;
}
