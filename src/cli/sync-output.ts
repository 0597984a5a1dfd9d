/**
 * What a sync prints on stdout, in one of three forms: text for people, NDJSON
 * events for scripts (`--json`, see json-events.ts), or the plan alone as
 * Graphviz DOT (`-n --plan-format dot`). Warnings and errors go to stderr in
 * every form, so stdout holds nothing but the chosen form.
 */
import { formatBytes } from '../format.js';
import type { DiffOffer } from '../planner/plan-input.js';
import { formatPlan } from '../planner/plan.js';
import type { Plan } from '../planner/plan.js';
import type { Volume } from '../planner/volume.js';
import type { S3Store } from '../stores/s3/s3-store.js';
import type { Store } from '../stores/store.js';
import type { SyncReport, TransferDone } from '../sync.js';
import type { ButtersinkFlags } from './config.js';
import type { CliIo } from './io.js';
import { jsonLine, planEvent, summaryEvent, transferEvent } from './json-events.js';
import { planToDot } from './plan-dot.js';
import { syncSummary, transferLine } from './render.js';

/** What an S3 destination says it moved to trash/ for one deleted diff. */
export type TrashedDiff = S3Store['trashed'][number];

/** Receives what a sync did, in order, and prints it. */
export interface SyncOutput {
  plan(plan: Plan): void;
  /** Transfer `index` (0-based) of `count` finished. */
  transfer(d: TransferDone, index: number, count: number): void;
  deleted(v: Volume): void;
  /** A stored diff deleted; `moved` when the store said where it went. */
  deletedDiff(d: DiffOffer, moved: TrashedDiff | undefined): void;
  /** The run ended well after `seconds`, having moved `deletedDiffs` diffs to trash/. */
  /** `thinned`: snapshots and diffs `--keep` removed after the sync. */
  end(report: SyncReport, seconds: number, deletedDiffs: number, thinned?: number): void;
}

/** The output `o` asks for (`--json`, `--plan-format dot`, else text). */
export function syncOutput(
  io: CliIo,
  o: Pick<ButtersinkFlags, 'json' | 'planFormat' | 'quiet' | 'dryRun'>,
  ctx: { source: Store; dest: Store; verb: 'sent' | 'received' },
): SyncOutput {
  if (o.json) return jsonOutput(io, o.dryRun, ctx);
  if (o.planFormat === 'dot') return dotOutput(io, ctx);
  return textOutput(io, o, ctx.verb);
}

/** `moved s3://b/p/s1/U_None (932 B) to s3://b/trash/p/s1/U_None` (and the removed .bs). */
export function trashLine(d: DiffOffer, moved: TrashedDiff | undefined): string {
  if (!moved) return `deleted diff ${d.to}_${d.from ?? 'None'} (${formatBytes(d.size)})\n`;
  const bs = moved.removedSizeInfo ? `; removed ${moved.removedSizeInfo} (no diff of it left)` : '';
  return `moved ${moved.key} (${formatBytes(moved.size)}) to ${moved.trash}${bs}\n`;
}

function textOutput(
  io: CliIo,
  o: Pick<ButtersinkFlags, 'quiet' | 'dryRun'>,
  verb: 'sent' | 'received',
): SyncOutput {
  const say = (s: string) => {
    if (o.quiet < 2) io.stdout.write(s);
  };
  return {
    plan: (plan) => say(formatPlan(plan) + '\n'),
    transfer: (d) => say(transferLine(verb, d)),
    deleted: (v) => say(`deleted ${v.path}\n`),
    deletedDiff: (d, moved) => say(trashLine(d, moved)),
    end(report, seconds, deletedDiffs, thinned = 0) {
      const kept = thinned > 0 ? `, ${thinned} removed by --keep` : '';
      if (o.dryRun) say('dry run: nothing changed\n');
      else if (report.transferred.length + report.deleted.length + deletedDiffs + thinned === 0) {
        say('nothing to do\n');
      } else say(syncSummary(report, seconds, deletedDiffs) + kept + '\n');
    },
  };
}

function jsonOutput(
  io: CliIo,
  dryRun: boolean,
  ctx: { source: Store; dest: Store; verb: 'sent' | 'received' },
): SyncOutput {
  const emit = (e: Parameters<typeof jsonLine>[0]) => io.stdout.write(jsonLine(e));
  const where = { source: ctx.source.location.uri, destination: ctx.dest.location.uri, dryRun };
  return {
    plan: (plan) => emit(planEvent(plan, where)),
    transfer: (d, index, count) => emit(transferEvent(d, index, count, ctx.verb)),
    deleted: (v) => emit({ event: 'delete', path: v.path, uuid: v.uuid }),
    deletedDiff: (d, moved) =>
      emit({
        event: 'delete-diff',
        to: d.to,
        from: d.from,
        size: moved?.size ?? d.size,
        key: moved?.key ?? null,
        trash: moved?.trash ?? null,
        removedSizeInfo: moved?.removedSizeInfo ?? null,
      }),
    end: (report, seconds, deletedDiffs) =>
      emit(summaryEvent(report, { dryRun, seconds, deletedDiffs })),
  };
}

/** Only the plan, as DOT; a dry run (the flags make sure) does nothing more. */
function dotOutput(io: CliIo, ctx: { source: Store; dest: Store }): SyncOutput {
  const none = () => undefined;
  return {
    plan: (plan) =>
      io.stdout.write(
        planToDot(plan, { source: ctx.source.location.uri, destination: ctx.dest.location.uri }),
      ),
    transfer: none,
    deleted: none,
    deletedDiff: none,
    end: none,
  };
}
