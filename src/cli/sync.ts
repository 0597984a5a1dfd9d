/** `buttersink <src> <dst>`: syncs and reports. */
import { formatPlan } from '../planner/plan.js';
import type { Store } from '../stores/store.js';
import { sync } from '../sync.js';
import type { ButtersinkFlags } from './config.js';
import type { CliIo } from './io.js';
import { progressLine, syncSummary, transferLine } from './render.js';
import { retentionExcludes, runRetention } from './retention-run.js';

/**
 * Syncs and reports on stdout: the plan, one line per transfer ("sent", or
 * "received" when a local btrfs destination restores from S3 or SSH), one per
 * delete, and a closing summary; `-q` drops the progress line, `-qq` all of
 * it. Returns the exit code.
 */
export async function runSync(
  io: CliIo,
  o: ButtersinkFlags,
  source: Store,
  dest: Store,
  signal: AbortSignal,
): Promise<number> {
  const progress = progressLine(io);
  const say = (s: string) => {
    if (o.quiet < 2) io.stdout.write(s);
  };
  const verb = dest.kind === 'btrfs' && source.kind !== 'btrfs' ? 'received' : 'sent';
  const started = performance.now();
  const keep = o.keep && { policy: o.keep, maxChain: o.maxChain, dryRun: o.dryRun, signal, say };
  const skip = keep ? await retentionExcludes(source, dest, { ...keep, exclude: o.exclude }) : [];
  const report = await sync(source, dest, {
    dryRun: o.dryRun,
    delete: o.delete,
    estimate: o.estimate,
    exclude: [...o.exclude, ...skip],
    spaceCheck: o.spaceCheck,
    compressedData: o.compressedData && o.proto !== '1',
    ...(o.bwlimit ? { bwLimit: o.bwlimit } : {}),
    signal,
    onPlan: (plan) => say(formatPlan(plan) + '\n'),
    onProgress: (t, p) => {
      if (o.quiet === 0) progress.update(t.to.path, p, t.estimated);
    },
    onTransferDone: (d) => {
      progress.clear();
      say(transferLine(verb, d));
    },
    onDelete: (v) => say(`deleted ${v.path}\n`),
  });
  const retained = keep
    ? await runRetention(source, dest, report, { ...keep, exclude: o.exclude })
    : undefined;
  const thinned = (retained?.deleted.length ?? 0) + (retained?.trashed.length ?? 0) > 0;
  if (o.dryRun) say('dry run: nothing changed\n');
  else if (report.transferred.length === 0 && report.deleted.length === 0 && !thinned)
    say('nothing to do\n');
  else say(syncSummary(report, (performance.now() - started) / 1000) + '\n');
  return 0;
}
