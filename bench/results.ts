/**
 * bench/RESULTS.md is generated, never edited: each scenario group's figures
 * are stored as a section in bench/results.json, a run replaces the sections
 * of the groups it ran, and the Markdown is written from all stored sections.
 * A section run at another time than the latest says so in its heading.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tableHeader } from './harness.js';
import { formatGoal, formatMet, formatValue } from './goals.js';
import type { Verdict } from './goals.js';
import type { ScenarioProfile } from './profile.js';
import { renderProfile } from './profile-render.js';

/** The figures of one scenario group from one run. */
export interface Section {
  group: string;
  /** When the run started, `YYYY-MM-DD HH:MM UTC`. */
  run: string;
  /** CPU model, cores, RAM, kernel, btrfs-progs, Node, load average. */
  machine: string;
  pairs: number;
  /** Rows of {@link tableHeader}. */
  rows: string[];
  /** Lines of Markdown after the table (another table, e.g. the planner's). */
  extra: string[];
  notes: string[];
  /**
   * Issue 12's goals of the rows that have any (`row` indexes `rows`).
   * Absent in sections stored before goals were recorded.
   */
  goals?: RowGoals[];
  /** Profiles of the scenarios whose goals were not met (bench/profile.ts). Absent before profiling existed. */
  profiles?: ScenarioProfile[];
}

/** The verdicts of one table row. */
export interface RowGoals {
  row: number;
  scenario: string;
  verdicts: Verdict[];
}

const TITLES: Record<string, string> = {
  pipe: 'Stage chain in a pipe',
  sync: 'Sync (CLI)',
  probe: 'Size probe',
  guard: 'Receive guard: guarded vs unguarded receive',
  checksumdir: 'checksumdir',
  s3: 'S3 (moto_server on 127.0.0.1)',
  ssh: 'SSH (sshd on 127.0.0.1)',
  compress: 'Compressible data: compressed send data, S3 compression and encryption',
  rerun: 'Fixed costs: reruns and small incrementals',
  planner: 'Planner',
};
const ORDER = Object.keys(TITLES);

/** The analyses written by hand about these figures, newest first (bench/ANALYSIS-*.md). */
const ANALYSES = ['ANALYSIS-2026-11-30.md'];

/** The section's table, with goal and verdict columns when the section recorded goals. */
export function sectionTable(s: Section): string[] {
  if (!s.rows.length) return [];
  if (!s.goals) return [tableHeader, ...s.rows];
  const [h1, h2] = tableHeader.split('\n');
  const byRow = new Map(s.goals.map((g) => [g.row, g.verdicts]));
  return [
    `${h1} goal (issue 12) | met? |`,
    `${h2}---|---|`,
    ...s.rows.map((r, i) => {
      const vs = byRow.get(i) ?? [];
      const goal = vs.map((v) => `${formatGoal(v.goal)}: ${formatValue(v)}`).join('; ') || '—';
      return `${r} ${goal.replace(/\|/g, '\\|')} | ${formatMet(vs)} |`;
    }),
  ];
}

/** The summary of every goal stored, met or not, one row per goal. */
export function goalSummary(sections: Section[]): string[] {
  const rows = sections.flatMap((s) =>
    (s.goals ?? []).flatMap((g) =>
      g.verdicts.map(
        (v) =>
          `| ${g.scenario.replace(/\|/g, '\\|')} | ${formatGoal(v.goal)} | ${formatValue(v)} | ${v.met ? 'met' : '**not met**'} | ${s.run} |`,
      ),
    ),
  );
  if (!rows.length) return [];
  return [
    '## Goals (issue 12)',
    '',
    '| scenario | goal | measured | met? | run |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ];
}

/**
 * The "Profiles (goals not met)" part: each stored profile, and the unmet
 * scenarios that have none (profiling switched off, or a section stored
 * before profiles existed).
 */
export function profilesPart(sections: Section[]): string[] {
  const lines = [
    '## Profiles (goals not met)',
    '',
    'For each scenario whose goal was not met, where its time and CPU go (per process, and inside Node) and the floors of the designs involved, measured on this machine in the same run (bench/profile.ts). The baseline is the floor of the plain design; a floor below our time says how much of the gap that design could close.',
    '',
  ];
  let any = false;
  for (const s of sections) {
    const profiled = new Set((s.profiles ?? []).map((p) => p.scenario));
    for (const p of s.profiles ?? []) {
      any = true;
      lines.push(...renderProfile(p, s.run));
    }
    for (const g of s.goals ?? []) {
      if (g.verdicts.some((v) => !v.met) && !profiled.has(g.scenario)) {
        any = true;
        lines.push(
          `- Not profiled: ${g.scenario.replace(/\|/g, '\\|')} (run ${s.run}; profiling was off).`,
          '',
        );
      }
    }
  }
  if (!any)
    lines.push('None stored: every recorded goal was met, or no section recorded goals yet.', '');
  return lines;
}

/**
 * Merges `fresh` into the sections stored in `dir/results.json`, writes it and
 * `dir/RESULTS.md`, and returns the Markdown.
 */
export async function writeResults(
  dir: string,
  fresh: Section[],
  latest: { started: string; machine: string },
): Promise<string> {
  const store = join(dir, 'results.json');
  const old: Section[] = existsSync(store)
    ? (JSON.parse(await readFile(store, 'utf8')) as Section[])
    : [];
  const byGroup = new Map(old.map((s) => [s.group, s]));
  for (const s of fresh) byGroup.set(s.group, s);
  const sections = [...byGroup.values()].sort(
    (a, b) => ORDER.indexOf(a.group) - ORDER.indexOf(b.group),
  );
  await writeFile(store, JSON.stringify(sections, null, 2) + '\n');
  const md = renderResults(
    sections,
    fresh.map((f) => f.group),
    latest,
  );
  await writeFile(join(dir, 'RESULTS.md'), md);
  return md;
}

/**
 * The whole of RESULTS.md from the stored `sections`; `freshGroups` are the
 * groups the latest run (`latest`) ran.
 */
export function renderResults(
  sections: Section[],
  freshGroups: string[],
  latest: { started: string; machine: string },
): string {
  const lines = [
    '# Benchmark results',
    '',
    '<!-- Generated by `npm run bench` (bench/run.ts, bench/results.ts) from bench/results.json: do not edit. -->',
    '',
    `Latest run: ${latest.started} (groups ${freshGroups.join(', ') || 'none'}).`,
    `Machine: ${latest.machine}. Data on btrfs loop images in /dev/shm.`,
    '',
    "Each scenario alternates buttersink and its plain baseline on the same data, in the same run (baseline first in even pairs, ours first in odd ones). Speed ratio = baseline wall time / buttersink wall time per pair, median of the pairs (≥ 1 means buttersink is as fast or faster). CPU is user + system seconds of the whole process tree of each run (GNU time: `wait4` rusage of the shell, covering every process it waited for), median of the runs; for in-process rows, the bench process's `process.cpuUsage()` over the run. Peak RSS is the largest single process of each side over its runs (GNU time %M); in-process rows have none of their own.",
    '',
    `Analysis of these figures, written by hand and dated: ${ANALYSES.map((a) => `[${a}](${a})`).join(', ')}.`,
    '',
    ...goalSummary(sections),
  ];
  for (const s of sections) {
    const when = s.run === latest.started ? '' : ` (run ${s.run}; machine: ${s.machine})`;
    lines.push(`## ${TITLES[s.group] ?? s.group}${when}`, '');
    if (s.rows.length) lines.push(...sectionTable(s), '');
    if (s.extra.length) lines.push(...s.extra, '');
    if (s.notes.length) lines.push(...s.notes.map((n) => `- ${n}`), '');
  }
  lines.push(...profilesPart(sections));
  lines.push(
    'Run `npm run build && npm run bench` (as root) to reproduce; `BENCH_PAIRS=N` changes the number of pairs; `BENCH_ONLY=guard,probe` (or `npm run bench -- guard probe`) runs some groups and regenerates this file with their sections replaced; scenarios whose goals are not met are profiled after their pairs (`BENCH_PROFILE=1`: every scenario with a goal; `BENCH_PROFILE=0`: none).',
    '',
  );
  return lines.join('\n');
}
