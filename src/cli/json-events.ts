/**
 * What `--json` prints: one JSON object per line (NDJSON), each with an
 * `event` field naming its kind, for scripts. The fields are stable and
 * described, one definition per event, in `schema/buttersink-json.schema.json`
 * (a test validates real runs' output against it). Pure builders of plain
 * data; the commands print them with {@link jsonLine}.
 *
 * - listing (`buttersink --json <dst>`): one `listing` event.
 * - sync: one `plan` event, one `transfer` per finished transfer, one `delete`
 *   per deleted snapshot, one `delete-diff` per stored diff moved to trash/,
 *   then one `summary`.
 * - `--verify`: one `verify` event. `btrfslist --json`: one `btrfslist` event.
 * - any command that fails: one `error` event (and the usual line on stderr).
 */
import type { BtrfsListing } from '../btrfslist.js';
import { describeError } from '../errors.js';
import type { StoreView } from '../planner/plan-input.js';
import { planToJSON } from '../planner/plan.js';
import type { Plan, PlanJSON } from '../planner/plan.js';
import type { Partial } from '../stores/store.js';
import type { SyncReport, TransferDone } from '../sync.js';
import type { InScope } from './render.js';
import { hintFor } from './report-error.js';

/** One snapshot of a listing; sizes are null when the store does not know them (quotas off, S3). */
export interface ListedSnapshotJSON {
  uuid: string;
  path: string;
  totalSize: number | null;
  exclusiveSize: number | null;
}

/** One stored diff of an S3 listing. */
export interface ListedDiffJSON {
  /** UUID of the snapshot it creates, and that snapshot's path. */
  to: string;
  path: string;
  /** UUID (and path, when listed) of its parent; null for a full diff. */
  from: string | null;
  fromPath: string | null;
  size: number;
}

/** `buttersink --json <dst>`. */
export interface ListingEvent {
  event: 'listing';
  location: string;
  kind: StoreView['kind'];
  snapshots: ListedSnapshotJSON[];
  /** Stored diffs (S3); empty for btrfs and SSH stores. */
  diffs: ListedDiffJSON[];
  partials: { where: string; action: 'keep' | 'would-delete' | 'delete' }[];
}

/** The plan, before anything changes. */
export interface PlanEvent {
  event: 'plan';
  source: string;
  destination: string;
  dryRun: boolean;
  plan: PlanJSON;
}

/** One finished transfer. */
export interface TransferEvent {
  event: 'transfer';
  /** 1-based position in the plan's transfers, and their count. */
  index: number;
  count: number;
  /** `received` when a local btrfs destination restores from S3 or SSH, else `sent`. */
  verb: 'sent' | 'received';
  path: string;
  uuid: string;
  kind: 'full' | 'incremental';
  from: { path: string; uuid: string } | null;
  /** Bytes of send stream moved, and the planned size (`estimated`: not measured). */
  bytes: number;
  plannedBytes: number;
  estimated: boolean;
  seconds: number;
}

/** A destination snapshot deleted by `-d`. */
export interface DeleteEvent {
  event: 'delete';
  path: string;
  uuid: string;
}

/** A stored diff `-d` moved to trash/ (S3). */
export interface DeleteDiffEvent {
  event: 'delete-diff';
  to: string;
  from: string | null;
  size: number;
  /** Where it was and where it is now (S3 URIs), when the store says. */
  key: string | null;
  trash: string | null;
  /** The `.bs` size record removed with it because no diff of its snapshot is left. */
  removedSizeInfo: string | null;
}

/** The closing event of a sync. */
export interface SummaryEvent {
  event: 'summary';
  result: 'done' | 'nothing-to-do' | 'dry-run';
  snapshots: number;
  bytes: number;
  deleted: number;
  /** Stored diffs moved to trash/ (S3 with `-d`). */
  deletedDiffs: number;
  seconds: number;
}

/** `buttersink --verify --json s3://…`. */
export interface VerifyEvent {
  event: 'verify';
  location: string;
  diffs: { uri: string; ok: boolean; error: string | null; note: string | null }[];
  checked: number;
  bytes: number;
  bad: number;
}

/** A run that failed: the message printed on stderr, its hint and the exit status. */
export interface ErrorEvent {
  event: 'error';
  message: string;
  hint: string | null;
  exitCode: number;
}

/** `btrfslist --json <dir>`: the listing, as before, with `event` added. */
export type BtrfslistEvent = { event: 'btrfslist' } & BtrfsListing;

/** Every event `--json` prints. */
export type JsonEvent =
  | ListingEvent
  | PlanEvent
  | TransferEvent
  | DeleteEvent
  | DeleteDiffEvent
  | SummaryEvent
  | VerifyEvent
  | ErrorEvent
  | BtrfslistEvent;

/** `event` as one line of NDJSON. */
export function jsonLine(event: JsonEvent): string {
  return JSON.stringify(event) + '\n';
}

/** The `listing` event of `view`, keeping what `inScope` keeps (as the text listing does). */
export function listingEvent(
  location: string,
  view: StoreView,
  inScope: InScope,
  partials: { where: string; action: ListingEvent['partials'][number]['action'] }[],
): ListingEvent {
  const paths = new Map(view.volumes.map((v) => [v.uuid, v.path]));
  const snapshots = view.volumes
    .filter((v) => inScope(v.path))
    .sort((a, b) => a.path.localeCompare(b.path))
    .map((v) => ({
      uuid: v.uuid,
      path: v.path,
      totalSize: v.totalSize ?? null,
      exclusiveSize: v.exclusiveSize ?? null,
    }));
  const diffs = (view.kind === 's3' ? [...(view.diffs ?? [])] : [])
    .filter((d) => inScope(paths.get(d.to)))
    .map((d) => ({
      to: d.to,
      path: paths.get(d.to) ?? '',
      from: d.from,
      fromPath: d.from === null ? null : (paths.get(d.from) ?? null),
      size: d.size,
    }))
    .sort((a, b) => a.path.localeCompare(b.path) || a.to.localeCompare(b.to));
  return { event: 'listing', location, kind: view.kind, snapshots, diffs, partials };
}

/** What the listing does with each partial: -d deletes them, -d -n would. */
export function partialActions(
  partials: readonly Partial[],
  opts: { delete: boolean; dryRun: boolean },
): ListingEvent['partials'] {
  const action = !opts.delete ? 'keep' : opts.dryRun ? 'would-delete' : 'delete';
  return partials.map((p) => ({ where: p.where, action }));
}

/** The `plan` event. */
export function planEvent(
  plan: Plan,
  where: { source: string; destination: string; dryRun: boolean },
): PlanEvent {
  return { event: 'plan', ...where, plan: planToJSON(plan) };
}

/** The `transfer` event of transfer `index` (0-based) of `count`. */
export function transferEvent(
  d: TransferDone,
  index: number,
  count: number,
  verb: 'sent' | 'received',
): TransferEvent {
  const t = d.transfer;
  return {
    event: 'transfer',
    index: index + 1,
    count,
    verb,
    path: t.to.path,
    uuid: t.to.uuid,
    kind: t.from === null ? 'full' : 'incremental',
    from: t.from === null ? null : { path: t.from.path, uuid: t.from.uuid },
    bytes: d.bytes,
    plannedBytes: t.size,
    estimated: t.estimated,
    seconds: round3(d.seconds),
  };
}

/** The `summary` event of a sync that took `seconds` and moved `deletedDiffs` diffs to trash/. */
export function summaryEvent(
  report: SyncReport,
  o: { dryRun: boolean; seconds: number; deletedDiffs: number },
): SummaryEvent {
  const { dryRun, seconds, deletedDiffs } = o;
  const changed = report.transferred.length + report.deleted.length + deletedDiffs > 0;
  return {
    event: 'summary',
    result: dryRun ? 'dry-run' : changed ? 'done' : 'nothing-to-do',
    snapshots: report.transferred.length,
    bytes: report.transferred.reduce((n, d) => n + d.bytes, 0),
    deleted: report.deleted.length,
    deletedDiffs,
    seconds: round3(seconds),
  };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** The `error` event of a run that failed with `err` and exits `exitCode`. */
export function errorEvent(err: unknown, exitCode: number, srcArg?: string): ErrorEvent {
  return {
    event: 'error',
    message: describeError(err),
    hint: hintFor(err, srcArg) ?? null,
    exitCode,
  };
}
