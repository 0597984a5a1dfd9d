/**
 * The retention policy (`--keep latest=7,daily=14,weekly=8,monthly=12`): which
 * destination snapshots to keep and which to drop, by each snapshot's time.
 * Pure: no clock, no I/O.
 *
 * Modelled on btrbk's `target_preserve`, with these choices:
 *
 * - **Time**: a {@link Volume} carries no creation time (and a received
 *   snapshot's btrfs otime is when it was received, not taken), so the time is
 *   the date in the snapshot's name, as btrbk reads its own names:
 *   `2024-01-03`, `2024-01-03T03:00`, `20240103`, `20240103T0300` (the last
 *   date in the last path component; read as written, no time zone). A caller
 *   that knows a better time passes it as {@link RetentionItem.time}.
 * - **Series**: the policy applies to each series separately: the path with
 *   its date cut out (`home/2024-01-03` and `home/2024-01-04` are one series,
 *   `root.20240103` another), as btrbk applies it per subvolume.
 * - **Periods**: `daily=N` is the N calendar days ending with the day of the
 *   series' newest snapshot (not "now": a backup set that stopped growing is not
 *   thinned away); likewise hours, weeks (ISO: Monday to Sunday; btrbk's default
 *   `preserve_day_of_week` is Sunday), months, years. `latest=N`: the N newest.
 * - **Which one per period**: the first (earliest), as btrbk keeps "the first
 *   backup of the day": once in place it stays the period's keeper, so later
 *   runs never swap it for a newer one.
 * - **Undated** snapshots (no date in the name, no time given) are never dropped.
 * - `N` may be `*` (every period), as btrbk's `*`. A rule given twice, an unknown
 *   rule, a count that is not a whole number, or a policy that keeps nothing is refused.
 */
import { UsageError } from '../errors.js';

/** A rule of the policy. */
export type KeepRule = 'latest' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

/** The rules in the order they print. */
export const KEEP_RULES: readonly KeepRule[] = [
  'latest',
  'hourly',
  'daily',
  'weekly',
  'monthly',
  'yearly',
];

/** How many of each to keep (`Infinity`: `*`, all). Rules not given keep none. */
export type KeepPolicy = Readonly<Partial<Record<KeepRule, number>>>;

/** Why a snapshot is kept: a rule of the policy, or one of the safety rules. */
export type KeepReason = KeepRule | 'undated' | 'protected';

/** A snapshot the policy decides on. */
export interface RetentionItem {
  /** Its identity (the effective UUID). */
  readonly id: string;
  /** Store-relative path. */
  readonly path: string;
  /** Its time when known otherwise; else the date in its name is used. */
  readonly time?: Date;
}

/** A kept snapshot and every reason it is kept. */
export interface KeptItem<T extends RetentionItem> {
  readonly item: T;
  readonly reasons: readonly KeepReason[];
}

/** What {@link applyKeepPolicy} decided. Every item is in exactly one list. */
export interface RetentionDecision<T extends RetentionItem> {
  /** Sorted oldest first (undated last, by path). */
  readonly kept: readonly KeptItem<T>[];
  /** Sorted oldest first. */
  readonly dropped: readonly T[];
}

/**
 * Parses a `--keep` value such as `latest=7,daily=14,weekly=8,monthly=12`.
 * Throws a {@link UsageError} with a one-line message on a bad spec.
 */
export function parseKeepPolicy(spec: string): KeepPolicy {
  const policy: Partial<Record<KeepRule, number>> = {};
  const hint = `expected RULE=N[,RULE=N…] with RULE one of ${KEEP_RULES.join(', ')} and N a whole number or *`;
  if (spec.trim() === '') throw new UsageError(`--keep: empty; ${hint}`);
  for (const part of spec.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*(\*|\d{1,6})\s*$/.exec(part);
    const rule = m?.[1] as KeepRule | undefined;
    if (!m || rule === undefined || m[2] === undefined) {
      throw new UsageError(`--keep: cannot read '${part}'; ${hint}`);
    }
    if (!KEEP_RULES.includes(rule)) {
      throw new UsageError(`--keep: unknown rule '${rule}'; ${hint}`);
    }
    if (policy[rule] !== undefined) throw new UsageError(`--keep: '${rule}' given twice`);
    policy[rule] = m[2] === '*' ? Infinity : Number(m[2]);
  }
  if (!Object.values(policy).some((n) => n > 0)) {
    throw new UsageError(`--keep ${spec}: keeps nothing; give at least one rule a count above 0`);
  }
  return policy;
}

/** The policy as `--keep` text, rules in {@link KEEP_RULES} order. */
export function formatKeepPolicy(policy: KeepPolicy): string {
  return KEEP_RULES.filter((r) => policy[r] !== undefined)
    .map((r) => `${r}=${policy[r] === Infinity ? '*' : String(policy[r])}`)
    .join(',');
}

// Dashed: 2024-01-03[(T| |_)03[:]00[[:]00]]; compact: 20240103[T0300[00]].
const DATE_PATTERNS = [
  /(?<![0-9])(\d{4})-(\d{2})-(\d{2})(?:[T _](\d{2}):?(\d{2})(?::?(\d{2}))?)?(?![0-9])/g,
  /(?<![0-9])(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})?)?(?![0-9])/g,
];

interface NameDate {
  readonly time: Date;
  /** Where the date text starts and ends in the last path component. */
  readonly start: number;
  readonly end: number;
}

function findNameDate(base: string): NameDate | undefined {
  let best: NameDate | undefined;
  for (const re of DATE_PATTERNS) {
    for (const m of base.matchAll(re)) {
      const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
      const time = validDate(y ?? 0, mo ?? 0, d ?? 0, h ?? 0, mi ?? 0, s ?? 0);
      if (time && (!best || m.index >= best.start)) {
        best = { time, start: m.index, end: m.index + m[0].length };
      }
    }
  }
  return best;
}

function validDate(y: number, mo: number, d: number, h: number, mi: number, s: number) {
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return t.getUTCDate() === d ? t : undefined;
}

/**
 * The date in a snapshot's name (the last date in its last path component), as
 * a Date whose UTC fields are the name's wall-clock fields; undefined when none.
 */
export function nameDate(path: string): Date | undefined {
  return findNameDate(path.slice(path.lastIndexOf('/') + 1))?.time;
}

/** The series a snapshot belongs to: its path with the name's date replaced by `{date}`. */
export function seriesOf(path: string): string {
  const cut = path.lastIndexOf('/') + 1;
  const base = path.slice(cut);
  const found = findNameDate(base);
  if (!found) return path;
  return `${path.slice(0, cut)}${base.slice(0, found.start)}{date}${base.slice(found.end)}`;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The number of the period `t` falls in, for a rule other than `latest`. */
function periodOf(rule: Exclude<KeepRule, 'latest'>, t: Date): number {
  const ms = t.getTime();
  switch (rule) {
    case 'hourly':
      return Math.floor(ms / HOUR);
    case 'daily':
      return Math.floor(ms / DAY);
    case 'weekly':
      // 1970-01-01 was a Thursday: +3 makes weeks start on Monday.
      return Math.floor((Math.floor(ms / DAY) + 3) / 7);
    case 'monthly':
      return t.getUTCFullYear() * 12 + t.getUTCMonth();
    case 'yearly':
      return t.getUTCFullYear();
  }
}

interface Dated<T> {
  readonly item: T;
  readonly time: Date;
}

/** Which rules keep each of one series' dated snapshots (sorted oldest first). */
function keptInSeries<T>(dated: readonly Dated<T>[], policy: KeepPolicy): Map<T, KeepRule[]> {
  const reasons = new Map<T, KeepRule[]>();
  const add = (item: T, rule: KeepRule) => reasons.set(item, [...(reasons.get(item) ?? []), rule]);
  const newest = dated.at(-1);
  if (!newest) return reasons;
  const latest = policy.latest ?? 0;
  dated.slice(Math.max(0, dated.length - latest)).forEach((d) => add(d.item, 'latest'));
  for (const rule of KEEP_RULES) {
    const count = policy[rule] ?? 0;
    if (rule === 'latest' || count <= 0) continue;
    const last = periodOf(rule, newest.time);
    const seen = new Set<number>();
    for (const d of dated) {
      const p = periodOf(rule, d.time);
      if (p > last - count && !seen.has(p)) {
        seen.add(p);
        add(d.item, rule);
      }
    }
  }
  return reasons;
}

const byTimeThenPath = <T extends RetentionItem>(a: Dated<T>, b: Dated<T>) =>
  a.time.getTime() - b.time.getTime() || (a.item.path < b.item.path ? -1 : 1);

/**
 * Decides which of `items` to keep under `policy`, series by series (see the
 * module header). Snapshots in `protect` (by id) are kept whatever the policy says.
 */
export function applyKeepPolicy<T extends RetentionItem>(
  items: readonly T[],
  policy: KeepPolicy,
  protect: ReadonlySet<string> = new Set(),
): RetentionDecision<T> {
  const series = new Map<string, Dated<T>[]>();
  const undated: T[] = [];
  for (const item of items) {
    const time = item.time ?? nameDate(item.path);
    if (!time) undated.push(item);
    else
      series.set(seriesOf(item.path), [...(series.get(seriesOf(item.path)) ?? []), { item, time }]);
  }
  const kept: KeptItem<T>[] = [];
  const dropped: T[] = [];
  const all = [...series.values()].flatMap((dated) => {
    dated.sort(byTimeThenPath);
    const rules = keptInSeries(dated, policy);
    return dated.map((d) => ({ ...d, reasons: rules.get(d.item) ?? [] }));
  });
  for (const d of all.sort(byTimeThenPath)) {
    const reasons: KeepReason[] = [...d.reasons];
    if (protect.has(d.item.id)) reasons.push('protected');
    if (reasons.length > 0) kept.push({ item: d.item, reasons });
    else dropped.push(d.item);
  }
  undated.sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const item of undated) kept.push({ item, reasons: ['undated'] });
  return { kept, dropped };
}
