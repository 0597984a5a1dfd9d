/**
 * The speed goals of issue 12, attached to bench scenarios, and their
 * verdicts. A scenario may carry its own goals (`Scenario.goals`); otherwise
 * {@link goalsFor} finds them by group and scenario name, so scenarios written
 * elsewhere (bench/s3.ts, bench/ssh.ts, bench/rerun.ts) get theirs without
 * knowing about this file. Pure: no I/O.
 */
import type { Run } from './harness.js';

/** One goal a scenario's figures are held to. */
export type Goal =
  /** Median of per-pair (baseline wall / ours) at least `min`. */
  | { kind: 'ratio'; min: number }
  /** Median wall time of our side below `maxSeconds`. */
  | { kind: 'wall'; maxSeconds: number }
  /** Largest peak RSS of our side at most `maxMiB`; `why` says where the bound comes from. */
  | { kind: 'rss'; maxMiB: number; why: string };

/** A memory goal. */
export type RssGoal = Extract<Goal, { kind: 'rss' }>;

/** A goal with the figure it was held against. */
export interface Verdict {
  goal: Goal;
  /** The measured figure, in the goal's unit (×, s or MiB); absent when not measured. */
  value?: number;
  met: boolean;
}

/** What a verdict needs of a scenario's result. */
export interface GoalInput {
  medianSpeedRatio: number;
  project: Run[];
}

interface Rule {
  group: string;
  /** Matched against the scenario name. */
  name: RegExp;
  goals: (name: string) => Goal[];
}

/**
 * The upload memory bound of issue 12: (jobs + 1) × part size + 100 MiB, with
 * `--jobs` and `--part-size` read from our side's command line or, failing
 * that, the CLI's defaults (4 jobs, 16 MiB parts).
 */
export function uploadRssGoal(command: string): RssGoal {
  const part = Number(/--part-size[ =](\d+)/.exec(command)?.[1] ?? 16);
  const jobs = Number(/--jobs[ =](\d+)/.exec(command)?.[1] ?? 4);
  return {
    kind: 'rss',
    maxMiB: (jobs + 1) * part + 100,
    why: `(jobs + 1) × part + 100 MiB, ${jobs} jobs × ${part} MiB`,
  };
}

/** Issue 12's goals, by group and scenario name; the first matching rule wins. */
const RULES: Rule[] = [
  {
    group: 'compress',
    name: /^local full sync, compress=zstd/,
    goals: () => [{ kind: 'ratio', min: 1.4 }],
  },
  { group: 'sync', name: /compress|zstd/i, goals: () => [{ kind: 'ratio', min: 1.4 }] },
  {
    group: 'sync',
    name: /full sync|incremental sync/i,
    goals: () => [{ kind: 'ratio', min: 0.97 }],
  },
  { group: 's3', name: /btrfs → S3/, goals: () => [{ kind: 'ratio', min: 1.0 }] },
  { group: 's3', name: /S3.*→ btrfs/, goals: () => [{ kind: 'ratio', min: 1.0 }] },
  { group: 'ssh', name: /openssh|ssh-program/i, goals: () => [{ kind: 'ratio', min: 0.97 }] },
  { group: 'ssh', name: /ssh/i, goals: () => [{ kind: 'ratio', min: 0.9 }] },
  {
    group: 'rerun',
    name: /nothing to transfer/i,
    goals: () => [{ kind: 'wall', maxSeconds: 0.3 }],
  },
];

/**
 * The goals of scenario `name` in `group` (empty when issue 12 sets none).
 * `command` (our side's command line) supplies the upload's part size and
 * jobs for the memory goal of an S3 upload.
 */
export function goalsFor(group: string, name: string, command = ''): Goal[] {
  const rule = RULES.find((r) => r.group === group && r.name.test(name));
  if (!rule) return [];
  const goals = rule.goals(name);
  return group === 's3' && /btrfs → S3/.test(name) ? [...goals, uploadRssGoal(command)] : goals;
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Holds `result` to `goal`. An RSS goal without RSS figures is not met (and has no value). */
export function evaluate(goal: Goal, result: GoalInput): Verdict {
  switch (goal.kind) {
    case 'ratio':
      return { goal, value: result.medianSpeedRatio, met: result.medianSpeedRatio >= goal.min };
    case 'wall': {
      const value = medianOf(result.project.map((r) => r.seconds));
      return { goal, value, met: value < goal.maxSeconds };
    }
    case 'rss': {
      const kib = result.project.map((r) => r.maxRssKiB);
      if (kib.length === 0 || kib.some((k) => k === undefined)) return { goal, met: false };
      const value = Math.max(...(kib as number[])) / 1024;
      return { goal, value, met: value <= goal.maxMiB };
    }
  }
}

/** The goal as text, e.g. `≥ 0.97×`, `< 0.3 s wall`, `peak RSS ≤ 600 MiB`. */
export function formatGoal(goal: Goal): string {
  switch (goal.kind) {
    case 'ratio':
      return `≥ ${goal.min}×`;
    case 'wall':
      return `< ${goal.maxSeconds} s wall`;
    case 'rss':
      return `peak RSS ≤ ${goal.maxMiB} MiB (${goal.why})`;
  }
}

/** The measured figure in the goal's unit, e.g. `0.84×`, `0.41 s`, `525 MiB`. */
export function formatValue(v: Verdict): string {
  const x = v.value;
  if (typeof x !== 'number' || !Number.isFinite(x)) return 'not measured';
  switch (v.goal.kind) {
    case 'ratio':
      return `${x.toFixed(2)}×`;
    case 'wall':
      return `${x.toFixed(2)} s`;
    case 'rss':
      return `${x.toFixed(0)} MiB`;
  }
}

/** `met` / `**not met**` for a list of verdicts (`—` when there are none). */
export function formatMet(vs: Verdict[]): string {
  if (vs.length === 0) return '—';
  return vs.every((v) => v.met) ? 'met' : '**not met**';
}

/** True when some verdict is not met. */
export function anyUnmet(vs: Verdict[]): boolean {
  return vs.some((v) => !v.met);
}
