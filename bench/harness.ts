/**
 * Benchmark harness: runs a project command and the plain baseline it replaces
 * alternately, on the same data in the same run, and reports the median ratio
 * of ≥ 5 pairs, user and system CPU of each side's whole process tree and peak
 * RSS (GNU time: `wait4` rusage of the shell, which includes every descendant
 * it waited for; %M is the largest single process). Timing figures live here,
 * never in tests.
 */
import { execa } from 'execa';
import type { Goal } from './goals.js';

/** One timed run of a shell command. */
export interface Run {
  seconds: number;
  /**
   * Peak resident set size of the command's largest process, in KiB (GNU time
   * %M). Absent when the side ran inside the bench process (no RSS of its own).
   */
  maxRssKiB?: number;
  /** User CPU seconds of the run's whole process tree (GNU time %U, or `process.cpuUsage()` in-process). */
  userSeconds?: number;
  /** System CPU seconds of the run's whole process tree (GNU time %S, or `process.cpuUsage()` in-process). */
  sysSeconds?: number;
}

/** Parses the last stderr line of `/usr/bin/time -f '%e %M %U %S'`. */
export function parseTime(stderr: string): Required<Run> {
  const lines = stderr.trim().split('\n');
  const [seconds, rss, user, sys] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
  if ([seconds, rss, user, sys].some((x) => x === undefined || !Number.isFinite(x))) {
    throw new Error(`no GNU time figures in: ${lines[lines.length - 1] ?? ''}`);
  }
  return { seconds: seconds!, maxRssKiB: rss!, userSeconds: user!, sysSeconds: sys! };
}

/** GNU time's format for {@link parseTime}. */
export const TIME_FORMAT = '%e %M %U %S';

/** A scenario: the project's way and the plain baseline, with a reset between runs. */
export interface Scenario {
  name: string;
  /** Bytes moved per run, for throughput. */
  bytes?: number;
  project: string;
  baseline: string;
  /** Shell command run before every run of either side (e.g. delete the received snapshot). */
  reset?: string;
  /** How many project/baseline pairs. Default 5. */
  pairs?: number;
  /** Issue 12's goals for it; when absent, bench/goals.ts finds them by group and name. */
  goals?: Goal[];
}

/** The outcome of a scenario. */
export interface ScenarioResult {
  name: string;
  /** Number of project/baseline pairs run. */
  pairs: number;
  bytes?: number;
  project: Run[];
  baseline: Run[];
  /** Median of per-pair (baseline seconds / project seconds): ≥ 1 means the project is as fast or faster. */
  medianSpeedRatio: number;
}

/** Runs `command` under bash with GNU time; throws with its stderr when it fails. */
export async function timeCommand(command: string): Promise<Run> {
  const res = await execa(
    '/usr/bin/time',
    ['-f', TIME_FORMAT, 'bash', '-o', 'pipefail', '-c', command],
    {
      reject: false,
      all: false,
    },
  );
  if (res.exitCode !== 0) {
    throw new Error(`benchmark command failed (${res.exitCode}): ${command}\n${res.stderr}`);
  }
  return parseTime(res.stderr);
}

/** Wall time of `command` measured in-process with hrtime (GNU time rounds to 10 ms). */
export async function timePrecise(command: string): Promise<Run> {
  const t0 = process.hrtime.bigint();
  const run = await timeCommand(command);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { ...run, seconds };
}

/**
 * Runs `argv` (a child that times its own work and prints `{"seconds": …}` as
 * its last stdout line) under GNU time: wall time is the child's own figure,
 * CPU and peak RSS are the child's whole process tree (start-up included).
 */
export async function timeChild(argv: string[], cwd?: string): Promise<Run> {
  const res = await execa('/usr/bin/time', ['-f', TIME_FORMAT, ...argv], {
    reject: false,
    ...(cwd ? { cwd } : {}),
  });
  if (res.exitCode !== 0) {
    throw new Error(`benchmark child failed (${res.exitCode}): ${argv.join(' ')}\n${res.stderr}`);
  }
  const out = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as { seconds?: unknown };
  if (typeof out.seconds !== 'number') {
    throw new Error(`benchmark child printed no seconds: ${argv.join(' ')}`);
  }
  return { ...parseTime(res.stderr), seconds: out.seconds };
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Alternates the two sides `pairs` times (baseline first in even pairs, project
 * first in odd ones), calling `reset` before every run and once at the end.
 */
async function alternate(
  name: string,
  bytes: number | undefined,
  pairs: number,
  measure: Record<'project' | 'baseline', () => Promise<Run>>,
  reset: () => Promise<void> = async () => undefined,
): Promise<ScenarioResult> {
  const project: Run[] = [];
  const baseline: Run[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const order =
      i % 2 === 0 ? (['baseline', 'project'] as const) : (['project', 'baseline'] as const);
    const got: Partial<Record<'baseline' | 'project', Run>> = {};
    for (const side of order) {
      await reset();
      got[side] = await measure[side]();
    }
    project.push(got.project!);
    baseline.push(got.baseline!);
    ratios.push(got.baseline!.seconds / got.project!.seconds);
  }
  await reset();
  const out: ScenarioResult = {
    name,
    pairs,
    project,
    baseline,
    medianSpeedRatio: median(ratios),
  };
  return bytes === undefined ? out : { ...out, bytes };
}

/** Runs a scenario of shell commands; see {@link alternate}. */
export async function runScenario(sc: Scenario): Promise<ScenarioResult> {
  const reset = sc.reset;
  return alternate(
    sc.name,
    sc.bytes,
    sc.pairs ?? 5,
    { project: () => timePrecise(sc.project), baseline: () => timePrecise(sc.baseline) },
    reset ? async () => void (await execa('bash', ['-c', reset])) : undefined,
  );
}

/** A scenario measured inside this process: both sides are async functions. */
export interface FnScenario {
  name: string;
  bytes?: number;
  project: () => Promise<void>;
  baseline: () => Promise<void>;
  pairs?: number;
}

/**
 * Runs an in-process scenario; see {@link alternate}. CPU is this process's
 * `process.cpuUsage()` delta over the run (children it spawns are not in it);
 * there is no peak RSS per side (both share this process), so none is reported.
 */
export async function runFnScenario(sc: FnScenario): Promise<ScenarioResult> {
  const time = (fn: () => Promise<void>) => async (): Promise<Run> => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    return { seconds, userSeconds: c.user / 1e6, sysSeconds: c.system / 1e6 };
  };
  return alternate(sc.name, sc.bytes, sc.pairs ?? 5, {
    project: time(sc.project),
    baseline: time(sc.baseline),
  });
}

/** A scenario whose sides measure themselves (e.g. a child process timing only its own work). */
export interface MeasuredScenario {
  name: string;
  bytes?: number;
  project: () => Promise<Run>;
  baseline: () => Promise<Run>;
  /** Run before every run of either side and once at the end. */
  reset?: () => Promise<void>;
  pairs?: number;
}

/** Runs a self-measuring scenario; see {@link alternate}. */
export async function runMeasuredScenario(sc: MeasuredScenario): Promise<ScenarioResult> {
  return alternate(
    sc.name,
    sc.bytes,
    sc.pairs ?? 5,
    { project: sc.project, baseline: sc.baseline },
    sc.reset,
  );
}

/** One Markdown table row for a scenario. */
export function formatRow(r: ScenarioResult): string {
  const p = median(r.project.map((x) => x.seconds));
  const b = median(r.baseline.map((x) => x.seconds));
  const mbps = (s: number) => (r.bytes ? ` ${(r.bytes / 1e6 / s).toFixed(0)} MB/s` : '');
  const rss = (runs: Run[]) => {
    const k = runs.map((x) => x.maxRssKiB).filter((x) => x !== undefined);
    return k.length === runs.length
      ? `${(Math.max(...k) / 1024).toFixed(0)} MiB`
      : '— (in-process)';
  };
  const cpu = (runs: Run[]) => {
    const u = runs.map((x) => x.userSeconds).filter((x) => x !== undefined);
    const s = runs.map((x) => x.sysSeconds).filter((x) => x !== undefined);
    return u.length === runs.length && s.length === runs.length
      ? `${median(u).toFixed(2)} + ${median(s).toFixed(2)} s`
      : '—';
  };
  // A `|` in a scenario name (a shell pipe) would split the Markdown cell.
  return `| ${r.name.replace(/\|/g, '\\|')} | ${r.pairs} | ${p.toFixed(2)} s${mbps(p)} | ${b.toFixed(2)} s${mbps(b)} | **${r.medianSpeedRatio.toFixed(2)}×** | ${cpu(r.project)} | ${cpu(r.baseline)} | ${rss(r.project)} | ${rss(r.baseline)} |`;
}

/** Table header matching {@link formatRow}. */
export const tableHeader =
  '| scenario | pairs | buttersink wall (median) | baseline wall (median) | speed ratio (baseline / ours, median of pairs) | CPU ours user + sys (median) | CPU baseline user + sys (median) | peak RSS ours | peak RSS baseline |\n|---|---|---|---|---|---|---|---|---|';
