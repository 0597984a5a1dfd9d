/**
 * Benchmark harness: runs a project command and the plain baseline it replaces
 * alternately, on the same data in the same run, and reports the median ratio
 * of ≥ 5 pairs and peak RSS (GNU time's maximum resident set size). Timing
 * figures live here, never in tests.
 */
import { execa } from 'execa';

/** One timed run of a shell command. */
export interface Run {
  seconds: number;
  /** Peak resident set size of the command's largest process, in KiB (GNU time %M). */
  maxRssKiB: number;
}

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
}

/** The outcome of a scenario. */
export interface ScenarioResult {
  name: string;
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
    ['-f', '%e %M', 'bash', '-o', 'pipefail', '-c', command],
    {
      reject: false,
      all: false,
    },
  );
  const lines = res.stderr.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  if (res.exitCode !== 0) {
    throw new Error(`benchmark command failed (${res.exitCode}): ${command}\n${res.stderr}`);
  }
  const [secs, rss] = last.split(' ');
  return { seconds: Number(secs), maxRssKiB: Number(rss) };
}

/** Wall time of `command` measured in-process with hrtime (GNU time rounds to 10 ms). */
export async function timePrecise(command: string): Promise<Run> {
  const t0 = process.hrtime.bigint();
  const run = await timeCommand(command);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, maxRssKiB: run.maxRssKiB };
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
  const out: ScenarioResult = { name, project, baseline, medianSpeedRatio: median(ratios) };
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
 * Runs an in-process scenario; see {@link alternate}. Peak RSS is this
 * process's (both sides share it), so it is reported for both.
 */
export async function runFnScenario(sc: FnScenario): Promise<ScenarioResult> {
  const time = (fn: () => Promise<void>) => async (): Promise<Run> => {
    const t0 = process.hrtime.bigint();
    await fn();
    return {
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      maxRssKiB: process.resourceUsage().maxRSS,
    };
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
  const mbps = (s: number) => (r.bytes ? `${(r.bytes / 1e6 / s).toFixed(0)} MB/s` : '');
  const rss = (runs: Run[]) =>
    `${(Math.max(...runs.map((x) => x.maxRssKiB)) / 1024).toFixed(0)} MiB`;
  // A `|` in a scenario name (a shell pipe) would split the Markdown cell.
  return `| ${r.name.replace(/\|/g, '\\|')} | ${p.toFixed(2)} s ${mbps(p)} | ${b.toFixed(2)} s ${mbps(b)} | **${r.medianSpeedRatio.toFixed(2)}×** | ${rss(r.project)} | ${rss(r.baseline)} |`;
}

/** Table header matching {@link formatRow}. */
export const tableHeader =
  '| scenario | buttersink (median) | plain baseline (median) | speed ratio (baseline time / ours, median of pairs) | peak RSS ours | peak RSS baseline |\n|---|---|---|---|---|---|';
