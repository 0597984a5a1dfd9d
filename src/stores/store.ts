/**
 * The one interface every store kind implements (local btrfs, SSH, S3, memory).
 * The sync engine and library users talk to stores only through it; dry run
 * and retry are wrappers around it (`wrappers/`), and rate limiting a stage,
 * never special cases inside a store.
 */
import type { SinkStage, SourceStage, TransformStage } from '../streams/stage.js';
import type { DiffOffer, StoreKind, StoreView } from '../planner/plan-input.js';
import type { Volume } from '../planner/volume.js';
import type { LockOptions, StoreLock } from './lock.js';
import type { Location } from './uri.js';
import type { StreamSupport } from '../btrfs/send-capabilities.js';

/** Which side of a sync a store is on (a store lists differently as a source). */
export type StoreRole = 'source' | 'dest';

/** Options accepted by store operations. */
export interface StoreOpOptions {
  signal?: AbortSignal;
}

/** Options of {@link Store.send}. */
export interface SendOptions extends StoreOpOptions {
  /**
   * Send compressed extents as they are (`btrfs send --proto 2
   * --compressed-data`). Only set when {@link Store.streamSupport} of this
   * store and of the receiver allow it; stores that send what they hold (S3)
   * ignore it. Default false.
   */
  compressedData?: boolean;
}

/** Options of {@link Store.measure}. */
export interface MeasureOptions extends StoreOpOptions {
  /**
   * Whether a store that keeps measured sizes (the btrfs store's
   * `<snapshot>.bs`) records this one. Default true; false changes nothing
   * anywhere (a dry run: see `wrappers/dry-run-store.ts`).
   */
  record?: boolean;
}

/** Options of {@link Store.receive}. */
export interface ReceiveOptions extends StoreOpOptions {
  /**
   * True only when the stream comes straight from this machine's own `btrfs
   * send` (a local btrfs source). Every other stream (a bucket, an SSH peer, a
   * client of the server) is hostile until checked: a subvolume store then
   * runs it through the receive guard. Default false.
   */
  trustedSource?: boolean;
  /**
   * Called with the running total of bytes the store has acknowledged as
   * stored (S3: parts confirmed, those a resume skips included), for honest
   * progress. Stores that cannot tell never call it.
   */
  onStored?: (bytes: number) => void;
}

/** The stages that receive one diff, ending in the sink; transforms run first, in order. */
export interface ReceiveStages {
  readonly transforms: readonly TransformStage<unknown>[];
  readonly sink: SinkStage<unknown>;
  /**
   * True when these stages, or the remote end they feed, check the framing and CRC
   * of every command and the END before anything is committed (the receive guard
   * does, in its one parse; an SSH server does, first thing). Whoever feeds them
   * then does not parse the stream a second time to verify it.
   */
  readonly verifies?: boolean;
}

/** What {@link Store.preflight} needs of a planned transfer (a `Transfer` is one). */
export interface PreflightTransfer {
  /** The snapshot it creates: its UUID and where it lands. */
  readonly to: Pick<Volume, 'uuid' | 'path'>;
  /** Size in bytes: measured when `estimated` is false. */
  readonly size: number;
  readonly estimated: boolean;
}

/** Options of {@link Store.preflight}. */
export interface PreflightOptions extends StoreOpOptions {
  /** Compare the plan's size with the free space (default true; `--no-space-check` turns it off). */
  spaceCheck?: boolean;
}

/** Something that would make a planned run fail part-way: a real run refuses to start. */
export interface PreflightProblem {
  /** `NAME_CLASH`: a planned snapshot's path is taken. `NO_SPACE`: the plan does not fit. */
  readonly code: 'NAME_CLASH' | 'NO_SPACE';
  /** One line, naming the path and the numbers. */
  readonly message: string;
  /** True: only worth a warning (it rests on estimated sizes); the run goes on. */
  readonly warning?: boolean;
}

/** A partial transfer left by a failed or killed run. */
export interface Partial {
  /** Where it is, as the user would find it (absolute path, key). */
  readonly where: string;
}

/** A set of snapshots somewhere. */
export interface Store {
  readonly kind: StoreKind;
  readonly location: Location;
  /** Lists the store for the planner: its read-only snapshots and the diffs it offers. */
  view(role: StoreRole, opts?: StoreOpOptions): Promise<StoreView>;
  /**
   * Measures the exact (or near-exact) size of the diff creating `to` from `from`
   * (null: full). Only stores that generate diffs can; others throw StoreError.
   */
  measure(to: Volume, from: Volume | null, opts?: MeasureOptions): Promise<number>;
  /** The send stream creating `to` from `from`, as a source stage. */
  send(to: Volume, from: Volume | null, opts?: SendOptions): SourceStage<unknown>;
  /**
   * Optional, for stores that run `btrfs send` and `btrfs receive` (local,
   * SSH): what they can do with send stream protocol 2 (compressed data).
   * Stores without it send what they hold and store any stream.
   */
  streamSupport?(opts?: StoreOpOptions): Promise<StreamSupport>;
  /**
   * Stages that store the stream creating `to` (at `to.path`) from `from`. Contract:
   * nothing appears under its final name unless the whole stream arrived, verified
   * and was committed; a failure leaves a partial a later `deletePartials` finds.
   */
  receive(to: Volume, from: Volume | null, opts?: ReceiveOptions): Promise<ReceiveStages>;
  /**
   * Optional: stores the diff creating `to` from `from` by copying it inside the
   * storage service from `source` (S3 → S3 server-side copy), without moving its
   * bytes through this machine. Resolves with the bytes copied, or `undefined`
   * when it cannot copy from that source (the caller then streams the diff).
   */
  copyFrom?(
    source: Store,
    to: Volume,
    from: Volume | null,
    opts?: StoreOpOptions,
  ): Promise<number | undefined>;
  /** Optional: where the diff creating `to` from `from` is, as the user would find it (S3: its URI). */
  describeDiff?(to: Volume, from: Volume | null): string;
  /**
   * Optional: checks, before anything is sent, that the planned `transfers`
   * can land here: no planned path already taken, and (unless `spaceCheck` is
   * false) room for their total size. Resolves with the problems found (empty:
   * none); changes nothing. `sync` refuses to start when there are any.
   */
  preflight?(
    transfers: readonly PreflightTransfer[],
    opts?: PreflightOptions,
  ): Promise<PreflightProblem[]>;
  /** Deletes a snapshot (subvolume stores). */
  deleteVolume(volume: Volume, opts?: StoreOpOptions): Promise<void>;
  /** Deletes a stored diff (diff stores; S3 moves it under `trash/`). Subvolume stores throw StoreError. */
  deleteDiff(diff: DiffOffer, opts?: StoreOpOptions): Promise<void>;
  /** Partial transfers left behind by failed runs. */
  listPartials(opts?: StoreOpOptions): Promise<Partial[]>;
  /** Removes what {@link listPartials} found. */
  deletePartials(partials: readonly Partial[], opts?: StoreOpOptions): Promise<void>;
  /**
   * Optional: takes the store's lock, so only one run at a time changes it (see
   * `lock.ts`). Rejects with a LockedError naming the holder when another run
   * holds it. `sync` holds the destination's lock for the whole run.
   */
  lock?(opts?: LockOptions): Promise<StoreLock>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}
