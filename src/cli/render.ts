/**
 * What the CLI prints, as text: the progress line, listings, transfer lines
 * and summaries. Pure functions of the library's results, except
 * {@link progressDisplay}, which draws on a terminal.
 */
import { formatBytes } from '../format.js';
import type { StoreView } from '../planner/plan-input.js';
import type { Progress } from '../streams/progress-tap.js';
import { statusLine } from '../streams/status-line.js';
import type { SyncReport, TransferDone } from '../sync.js';
import type { CliIo } from './io.js';

/** Keeps a listing's entries: true for a path shown. */
export type InScope = (path: string | undefined) => boolean;

/** What the progress display shows: the running transfer and, for several, the whole run. */
export interface ProgressState {
  /** The running transfer's snapshot path, its 0-based index and the plan's transfer count. */
  label: string;
  index: number;
  count: number;
  /** The progress tap's last report: bytes read into the receiving side. */
  progress: Progress;
  /** Bytes the destination acknowledged as stored (S3: parts confirmed), when it can tell. */
  stored?: number;
  /** The transfer's size is an estimate. */
  estimated: boolean;
  /** Bytes of the transfers finished before this one, and the plan's total. */
  doneBytes: number;
  totalBytes: number;
  /** Some of the plan's total is estimated. */
  totalEstimated: boolean;
}

/** `≈1.2 GiB` for an estimate, `1.2 GiB` for a measured size. */
export function sizeOf(bytes: number, estimated: boolean): string {
  return `${estimated ? '≈' : ''}${formatBytes(bytes)}`;
}

/**
 * The progress display's text: the transfer line (bytes stored where the store
 * can tell, else bytes sent; `≈` before an estimated total), and for a run of
 * several transfers an overall line: `overall: 1 of 3 snapshots, 52.0 MiB of ≈200.0 MiB`.
 */
export function progressText(s: ProgressState): string {
  const p = s.progress;
  const moved = s.stored ?? p.bytes;
  const what = s.stored !== undefined ? ` stored (${formatBytes(p.bytes)} sent)` : '';
  const total = p.total !== undefined ? ` of ${sizeOf(p.total, s.estimated)}` : '';
  const eta = p.etaMs !== undefined && !p.done ? `, ${Math.ceil(p.etaMs / 1000)} s left` : '';
  const nth = s.count > 1 ? ` (${s.index + 1} of ${s.count})` : '';
  const line = `  ${s.label}${nth}: ${formatBytes(moved)}${what}${total} at ${formatBytes(p.rate)}/s${eta}`;
  if (s.count <= 1) return line;
  const all = `${formatBytes(s.doneBytes + moved)} of ${sizeOf(s.totalBytes, s.totalEstimated)}`;
  return `${line}\n  overall: ${s.index} of ${s.count} snapshots done, ${all}`;
}

/** The progress display on stderr (drawn only on a terminal). */
export function progressDisplay(io: CliIo) {
  const status = statusLine(io.stderr);
  return {
    enabled: status.enabled,
    draw: (s: ProgressState) => status.draw(progressText(s)),
    clear: () => status.clear(),
  };
}

/** The stored diffs `inScope` keeps, one line each, and a TOTAL line; `count` is how many. */
export function diffListing(view: StoreView, inScope: InScope): { text: string; count: number } {
  const paths = new Map(view.volumes.map((v) => [v.uuid, v.path]));
  const diffs = [...(view.diffs ?? [])]
    .filter((d) => inScope(paths.get(d.to)))
    .sort((a, b) => (paths.get(a.to) ?? '').localeCompare(paths.get(b.to) ?? ''));
  let bytes = 0;
  let text = '';
  for (const d of diffs) {
    bytes += d.size;
    const from = d.from === null ? 'full' : `from ${paths.get(d.from) ?? d.from}`;
    text += `${d.to}  ${paths.get(d.to)}  ${from}  ${formatBytes(d.size)}\n`;
  }
  text += `TOTAL: ${diffs.length} diff(s), ${formatBytes(bytes)}\n`;
  return { text, count: diffs.length };
}

/** The snapshots `inScope` keeps, one line each, and a TOTAL line; `count` is how many. */
export function volumeListing(view: StoreView, inScope: InScope): { text: string; count: number } {
  const rows = view.volumes
    .filter((v) => inScope(v.path))
    .sort((a, b) => a.path.localeCompare(b.path));
  let total = 0;
  let text = '';
  for (const v of rows) {
    const size = v.totalSize !== undefined ? formatBytes(v.totalSize) : '-';
    const excl =
      v.exclusiveSize !== undefined ? ` (${formatBytes(v.exclusiveSize)} exclusive)` : '';
    total += v.exclusiveSize ?? 0;
    text += `${v.uuid}  ${v.path}  ${size}${excl}\n`;
  }
  text += `TOTAL: ${rows.length} snapshot(s)${total > 0 ? `, ${formatBytes(total)} exclusive` : ''}\n`;
  return { text, count: rows.length };
}

/** `sent snap from parent: 1.2 MiB in 0.4 s (3 MiB/s)`; `verb` is "sent" or "received". */
export function transferLine(verb: string, d: TransferDone): string {
  const from = d.transfer.from ? ` from ${d.transfer.from.path}` : ' (full)';
  const rate = formatBytes(d.bytes / Math.max(d.seconds, 1e-3));
  return `${verb} ${d.transfer.to.path}${from}: ${formatBytes(d.bytes)} in ${d.seconds.toFixed(1)} s (${rate}/s)\n`;
}

/**
 * The closing line of a sync that changed something, `seconds` being the whole
 * run's: `3 snapshot(s), 1.2 GiB transferred in 14.2 s` (plus `, 2 deleted`,
 * `, 1 diff(s) moved to trash/`).
 */
export function syncSummary(report: SyncReport, seconds: number, deletedDiffs = 0): string {
  const bytes = report.transferred.reduce((n, d) => n + d.bytes, 0);
  const deleted = report.deleted.length > 0 ? `, ${report.deleted.length} deleted` : '';
  const trashed = deletedDiffs > 0 ? `, ${deletedDiffs} diff(s) moved to trash/` : '';
  return `${report.transferred.length} snapshot(s), ${formatBytes(bytes)} transferred in ${seconds.toFixed(1)} s${deleted}${trashed}`;
}

/** The closing line of `--verify`. */
export function verifySummary(checked: number, bytes: number, bad: number): string {
  return `verified ${checked} diff(s), ${formatBytes(bytes)}: ${bad} bad\n`;
}
