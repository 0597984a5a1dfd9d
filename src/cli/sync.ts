/** `buttersink <src> <dst>`: syncs and reports. */
import type { DiffOffer } from '../planner/plan-input.js';
import type { Plan } from '../planner/plan.js';
import type { Store } from '../stores/store.js';
import type { Progress } from '../streams/progress-tap.js';
import { sync } from '../sync.js';
import type { SyncOptions, SyncReport } from '../sync.js';
import type { ButtersinkFlags } from './config.js';
import type { CliIo } from './io.js';
import { progressDisplay } from './render.js';
import { retentionExcludes, runRetention } from '../retention/run.js';
import { asS3Store } from './s3-only.js';
import { syncOutput } from './sync-output.js';

/**
 * Syncs and reports on stdout: as text (the plan, one line per transfer
 * ("sent", or "received" when a local btrfs destination restores from S3 or
 * SSH), one per delete, and a closing summary; `-q` drops the progress
 * display, `-qq` all of it), as NDJSON events with `--json`, or, with `-n
 * --plan-format dot`, the plan as Graphviz DOT and nothing else. Returns the
 * exit code.
 */
export async function runSync(
  io: CliIo,
  o: ButtersinkFlags,
  source: Store,
  dest: Store,
  signal: AbortSignal,
): Promise<number> {
  const verb = dest.kind === 'btrfs' && source.kind !== 'btrfs' ? 'received' : 'sent';
  const out = syncOutput(io, o, { source, dest, verb });
  const started = performance.now();
  let deletedDiffs = 0;
  const progress = progressHooks(io, o, out);
  // Retention's lines are text: with --json or a DOT plan they go to stderr.
  const say = (s: string) => {
    if (o.quiet < 2) (o.json || o.planFormat === 'dot' ? io.stderr : io.stdout).write(s);
  };
  const keep = o.keep && { policy: o.keep, maxChain: o.maxChain, dryRun: o.dryRun, signal, say };
  const skip = keep ? await retentionExcludes(source, dest, { ...keep, exclude: o.exclude }) : [];
  const s3Dest = await asS3Store(dest);
  let report: SyncReport;
  try {
    report = await sync(source, dest, {
      dryRun: o.dryRun,
      delete: o.delete,
      estimate: o.estimate,
      exclude: [...o.exclude, ...skip],
      spaceCheck: o.spaceCheck,
      compressedData: o.compressedData && o.proto !== '1',
      ...(o.bwlimit ? { bwLimit: o.bwlimit } : {}),
      signal,
      ...progress.hooks,
      onDelete: (v) => out.deleted(v),
      onDeleteDiff: (d: DiffOffer) => {
        deletedDiffs++;
        out.deletedDiff(d, s3Dest?.trashed.at(-1));
      },
    });
  } finally {
    // An error's line goes below the display, not into it.
    progress.clear();
  }
  const retained = keep
    ? await runRetention(source, dest, report, { ...keep, exclude: o.exclude })
    : undefined;
  const thinned = (retained?.deleted.length ?? 0) + (retained?.trashed.length ?? 0);
  out.end(report, (performance.now() - started) / 1000, deletedDiffs, thinned);
  return 0;
}

/**
 * The sync hooks that draw the progress display (on a terminal, unless `-q`
 * or a DOT plan) and hand the plan and each finished transfer to `out`: the
 * running transfer's bytes (stored, where the destination says), and for a
 * run of several transfers the whole run's.
 */
function progressHooks(
  io: CliIo,
  o: ButtersinkFlags,
  out: ReturnType<typeof syncOutput>,
): {
  hooks: Pick<
    SyncOptions,
    'onPlan' | 'onTransferStart' | 'onProgress' | 'onStored' | 'onTransferDone'
  >;
  clear: () => void;
} {
  const display = progressDisplay(io);
  const shown = display.enabled && o.quiet === 0 && o.planFormat !== 'dot';
  let plan: Plan | undefined;
  let index = 0;
  let doneBytes = 0;
  let last: Progress | undefined;
  let stored: number | undefined;
  const draw = (label: string, estimated: boolean) => {
    if (!shown || !plan || !last) return;
    display.draw({
      label,
      index,
      count: plan.transfers.length,
      progress: last,
      ...(stored !== undefined ? { stored } : {}),
      estimated,
      doneBytes,
      totalBytes: plan.totalBytes,
      totalEstimated: plan.estimatedBytes > 0,
    });
  };
  const hooks: ReturnType<typeof progressHooks>['hooks'] = {
    onPlan: (p) => {
      plan = p;
      out.plan(p);
    },
    onTransferStart: (_t, i) => {
      index = i;
      last = undefined;
      stored = undefined;
    },
    onProgress: (t, p) => {
      last = p;
      draw(t.to.path, t.estimated);
    },
    onStored: (t, bytes) => {
      stored = bytes;
      draw(t.to.path, t.estimated);
    },
    onTransferDone: (d) => {
      display.clear();
      doneBytes += d.bytes;
      out.transfer(d, index, plan?.transfers.length ?? 1);
    },
  };
  return { hooks, clear: () => display.clear() };
}
