/**
 * Markdown for the "Profiles (goals not met)" part of bench/RESULTS.md, from
 * the profiles stored in bench/results.json (bench/profile.ts). Pure.
 */
import { formatGoal, formatValue } from './goals.js';
import type { ProcessCpu } from './profile-acct.js';
import type { NodeProfile, ProfiledRun, ScenarioProfile } from './profile.js';

const s2 = (x: number) => x.toFixed(2);
const cell = (s: string) => s.replace(/\|/g, '\\|');
const GiB = 2 ** 30;
/** Node processes whose profiles are shown per scenario. */
const MAX_NODE = 3;
/** Modules below this share of samples are folded into one row. */
const MIN_MODULE_PCT = 1;

/** The program a path ends in (`bash › node › btrfs` → `btrfs`). */
const program = (p: ProcessCpu) => p.path.split(' › ').pop() ?? p.path;

function cpuOf(ps: ProcessCpu[], only?: (p: ProcessCpu) => boolean) {
  const sel = only ? ps.filter(only) : ps;
  return {
    user: sel.reduce((a, p) => a + p.userSeconds, 0),
    sys: sel.reduce((a, p) => a + p.sysSeconds, 0),
  };
}

/** The runs table: wall, CPU, Node's share, CPU per GiB, and the ratio each run would give. */
function runsTable(p: ScenarioProfile): string[] {
  const base = p.runs.find((r) => r.label === 'baseline');
  const rows = p.runs.map((r) => {
    const all = cpuOf(r.processes);
    const node = cpuOf(r.processes, (x) => program(x) === 'node');
    const per = (c: { user: number; sys: number }) => s2(((c.user + c.sys) * GiB) / p.bytes!);
    const perGiB = p.bytes ? `${per(all)} s (Node ${per(node)} s)` : '—';
    const ratio = base ? `${s2(base.seconds / r.seconds)}×` : '—';
    const label = r.what ? `${r.label} (${r.what})` : r.label;
    const failed = r.exitCode === undefined ? '' : ` (exit ${r.exitCode})`;
    return `| ${cell(label)}${failed} | ${s2(r.seconds)} s | ${s2(all.user)} + ${s2(all.sys)} s | ${s2(node.user)} + ${s2(node.sys)} s | ${perGiB} | ${ratio} |`;
  });
  return [
    '| run | wall | CPU user + sys, all processes | of which Node processes | CPU per GiB of stream (of which Node) | ratio at this time (baseline wall / this wall) |',
    '|---|---|---|---|---|---|',
    ...rows,
  ];
}

/** CPU by program, ours against the baseline: where the extra CPU goes. */
function programTable(ours: ProfiledRun, base: ProfiledRun): string[] {
  const names = [...new Set([...ours.processes, ...base.processes].map(program))].sort();
  const rows = names.map((n) => {
    const o = cpuOf(ours.processes, (p) => program(p) === n);
    const b = cpuOf(base.processes, (p) => program(p) === n);
    const d = o.user + o.sys - (b.user + b.sys);
    return `| ${cell(n)} | ${s2(o.user)} + ${s2(o.sys)} s | ${s2(b.user)} + ${s2(b.sys)} s | ${d >= 0 ? '+' : ''}${s2(d)} s |`;
  });
  const o = cpuOf(ours.processes);
  const b = cpuOf(base.processes);
  return [
    '| program | CPU buttersink (user + sys) | CPU baseline (user + sys) | difference |',
    '|---|---|---|---|',
    ...rows,
    `| **all** | ${s2(o.user)} + ${s2(o.sys)} s | ${s2(b.user)} + ${s2(b.sys)} s | **${s2(o.user + o.sys - b.user - b.sys)} s** |`,
  ];
}

/** Every process of every run (paths under 0.01 s CPU folded into one line per run). */
function processTable(runs: ProfiledRun[]): string[] {
  const rows: string[] = [];
  for (const r of runs) {
    const big = r.processes.filter((p) => p.userSeconds + p.sysSeconds >= 0.01);
    const small = r.processes.filter((p) => p.userSeconds + p.sysSeconds < 0.01);
    for (const p of big) {
      const n = p.count > 1 ? ` × ${p.count}` : '';
      const el =
        p.elapsedSeconds === undefined ? 'ran before and after' : `${s2(p.elapsedSeconds)} s`;
      rows.push(
        `| ${cell(r.label)} | ${cell(p.path)}${n} | ${s2(p.userSeconds)} s | ${s2(p.sysSeconds)} s | ${el} |`,
      );
    }
    const count = small.reduce((a, p) => a + p.count, 0);
    if (count > 0)
      rows.push(`| ${cell(r.label)} | ${count} more processes under 0.01 s CPU each | | | |`);
  }
  return [
    '| run | process (parent › child) | user CPU | system CPU | elapsed (longest) |',
    '|---|---|---|---|---|',
    ...rows,
  ];
}

/** One sentence: the gap in wall time and CPU, who spends the extra CPU, and the floors. */
export function gapLine(ours: ProfiledRun, base: ProfiledRun, runs: ProfiledRun[]): string {
  const o = cpuOf(ours.processes);
  const b = cpuOf(base.processes);
  const byProgram = new Map<string, number>();
  for (const [sign, run] of [
    [1, ours],
    [-1, base],
  ] as const) {
    for (const p of run.processes) {
      const n = program(p);
      byProgram.set(n, (byProgram.get(n) ?? 0) + sign * (p.userSeconds + p.sysSeconds));
    }
  }
  const extra = [...byProgram]
    .filter(([, d]) => Math.abs(d) >= 0.05)
    .sort((x, y) => y[1] - x[1])
    .map(([n, d]) => `${n} ${d >= 0 ? '+' : ''}${s2(d)} s`)
    .join(', ');
  const floors = runs
    .filter((r) => r !== ours && r !== base && r.exitCode === undefined)
    .map((r) => `${r.label} ${s2(r.seconds)} s (${s2(base.seconds / r.seconds)}×)`)
    .join('; ');
  const dWall = ours.seconds - base.seconds;
  const dCpu = o.user + o.sys - b.user - b.sys;
  return (
    `In these runs buttersink took ${s2(ours.seconds)} s against the baseline's ${s2(base.seconds)} s (${dWall >= 0 ? '+' : ''}${s2(dWall)} s wall) and ${dCpu >= 0 ? '+' : ''}${s2(dCpu)} s CPU` +
    (extra ? ` (by program: ${extra})` : '') +
    `.${floors ? ` Design floors: ${floors}.` : ''}`
  );
}

/** One Node process's CPU profile: self time by module, and the top functions. */
function nodeSection(n: NodeProfile): string[] {
  const s = n.summary;
  const ms = (x: number) => x.toFixed(0);
  const rest = s.modules.filter((m) => m.pct < MIN_MODULE_PCT);
  return [
    `CPU profile of \`${cell(n.process)}\`: ${ms(s.totalMs)} ms profiled, ${s.samples} samples, main thread idle ${s.idlePct.toFixed(1)} %.`,
    '',
    '| module | self time | % of samples |',
    '|---|---|---|',
    ...s.modules
      .filter((m) => m.pct >= MIN_MODULE_PCT)
      .map((m) => `| ${cell(m.module)} | ${ms(m.selfMs)} ms | ${m.pct.toFixed(1)} % |`),
    ...(rest.length
      ? [
          `| ${rest.length} more modules under ${MIN_MODULE_PCT} % each | ${ms(rest.reduce((a, m) => a + m.selfMs, 0))} ms | ${rest.reduce((a, m) => a + m.pct, 0).toFixed(1)} % |`,
        ]
      : []),
    '',
    '| function (self time, idle excluded) | module | self time | % of samples |',
    '|---|---|---|---|',
    ...s.top.map(
      (f) =>
        `| \`${cell(f.fn)}\` | ${cell(f.module)} | ${ms(f.selfMs)} ms | ${f.pct.toFixed(1)} % |`,
    ),
    '',
  ];
}

/** The Markdown of one scenario's profile (a `###` heading and its tables). */
export function renderProfile(p: ScenarioProfile, run: string): string[] {
  const verdicts = p.verdicts
    .map((v) => `${formatGoal(v.goal)}: measured ${formatValue(v)}, ${v.met ? 'met' : 'not met'}`)
    .join('; ');
  const ours = p.runs.find((r) => r.label === 'buttersink');
  const base = p.runs.find((r) => r.label === 'baseline');
  const lines = [
    `### ${cell(p.scenario)}`,
    '',
    `Goals: ${verdicts || 'none'}. Profiled in the run of ${run}: each command below ran once more, after the scenario's reset, with BSD process accounting (user and system CPU of every process, from the kernel's record at its exit; processes that ran across the run, such as sshd or moto_server, by the difference of their /proc counters).`,
    '',
  ];
  if (ours && base) lines.push(gapLine(ours, base, p.runs), '');
  if (p.runs.length) lines.push(...runsTable(p), '');
  if (ours && base) lines.push('CPU by program:', '', ...programTable(ours, base), '');
  if (p.runs.length) lines.push('Per process:', '', ...processTable(p.runs), '');
  if (p.node.length) {
    // The busiest first; short-lived helpers (a remote `--version`, say) after, and at most MAX_NODE.
    const busy = (n: NodeProfile) => n.summary.totalMs * (1 - n.summary.idlePct / 100);
    const byBusy = [...p.node].sort((a, b) => busy(b) - busy(a));
    lines.push(
      'Inside Node (our side run once more with `node --cpu-prof` on every Node process; shares of that run, whose CPU the profiler inflates; positions in built files mapped to src/ by their source maps):',
      '',
    );
    for (const n of byBusy.slice(0, MAX_NODE)) lines.push(...nodeSection(n));
    if (byBusy.length > MAX_NODE) {
      const rest = byBusy.slice(MAX_NODE);
      lines.push(
        `${rest.length} more Node processes, ${rest.reduce((a, n) => a + busy(n), 0).toFixed(0)} ms busy together: ${rest.map((n) => `\`${cell(n.process)}\``).join(', ')}.`,
        '',
      );
    }
  }
  if (p.notes.length) lines.push(...p.notes.map((n) => `- ${n}`), '');
  return lines;
}
