/**
 * The `--keep` report as text: a heading naming the policy and which time it
 * went by, then one line per snapshot kept (with its reasons), dropped,
 * re-based or kept as a link, one per diff to trash, and the notes (the
 * caller passes the plan's warnings to `warn`).
 */
import { formatKeepPolicy } from '../planner/retention.js';
import type { RetentionPlan, RetentionSettings } from './decide.js';

/** The lines (newline included) that say what `plan` keeps, re-bases and deletes. */
export function retentionLines(
  plan: RetentionPlan,
  opts: RetentionSettings & { dryRun: boolean },
  describe: (to: string, from: string | null) => string,
): string[] {
  const { decision, chains } = plan;
  const would = opts.dryRun ? 'would ' : '';
  const undated = decision.kept.filter((k) => k.reasons.includes('undated')).length;
  const gone = chains ? chains.deleteDiffs.length : decision.dropped.length;
  const lines = [
    `retention ${formatKeepPolicy(opts.policy)}` +
      `${chains ? `, max chain ${opts.maxChain}` : ''}` +
      ` (by the date in each snapshot's name${undated > 0 ? `; ${undated} without one kept` : ''}):` +
      ` ${decision.kept.length} kept, ${gone} ${chains ? 'diff(s)' : 'snapshot(s)'} to delete` +
      `${chains ? `, ${chains.rebases.length} re-base(s)` : ''}`,
  ];
  for (const k of decision.kept) lines.push(`keep ${k.item.path} (${k.reasons.join(', ')})`);
  for (const v of plan.excluded) lines.push(`keep ${v.path} (excluded)`);
  if (!chains) {
    if (opts.dryRun) for (const d of decision.dropped) lines.push(`would delete ${d.path}`);
    return lines.map((l) => `${l}\n`);
  }
  for (const r of chains.rebases) {
    const why =
      r.reason === 'long'
        ? `its chain of ${r.chainBefore} diffs is longer than ${opts.maxChain}`
        : `the full send its chain starts from is dropped`;
    lines.push(`${would}re-base ${r.volume.path}: new full send (${why})`);
  }
  for (const v of chains.links) lines.push(`link ${v.path} (dropped; its diff is on a kept chain)`);
  for (const v of chains.dropped)
    lines.push(`${opts.dryRun ? 'would drop' : 'dropping'} ${v.path}`);
  if (opts.dryRun)
    for (const d of chains.deleteDiffs) lines.push(`would trash ${describe(d.to, d.from)}`);
  for (const n of chains.notes) lines.push(`note: ${n}`);
  return lines.map((l) => `${l}\n`);
}
