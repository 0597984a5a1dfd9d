/**
 * The profile of a scenario whose goal is not met (issue 12, "Must show"):
 * where the time and CPU go, and the floor of each design on this machine.
 * Runs, once each and after the scenario's reset:
 * - our side and the baseline with per-process user and system CPU
 *   (bench/profile-acct.ts); the baseline is the floor of the plain design;
 * - the design floors given for the scenario (e.g. the CLI's start-up followed
 *   by the plain pipe, a bare Node pass-through, ssh2 or the AWS SDK alone);
 * - our side again with every Node process under `node --cpu-prof`
 *   (the command's `<node> ` prefixes are rewritten), summarised per process
 *   (bench/profile-cpu.ts). Profiling slows Node down, so CPU figures come
 *   from the first run, shares of time from this one.
 * Invoked from bench/run.ts; stored per scenario in bench/results.json and
 * rendered by bench/profile-render.ts.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { accountedRun } from './profile-acct.js';
import type { ProcessCpu } from './profile-acct.js';
import { readCpuProfiles, sourceMapper, summarizeCpuProfile } from './profile-cpu.js';
import type { CpuSummary } from './profile-cpu.js';
import type { Verdict } from './goals.js';

/** A floor: a command doing only what the design cannot avoid. */
export interface FloorSpec {
  name: string;
  /** What it runs, in words, and why it is a floor. */
  what: string;
  command: string;
  /** Run before it instead of the scenario's reset. */
  reset?: string;
}

/** One profiled run. */
export interface ProfiledRun {
  /** `buttersink`, `baseline` or a floor's name. */
  label: string;
  what?: string;
  seconds: number;
  processes: ProcessCpu[];
  /** Set when the command failed (its figures then mean little). */
  exitCode?: number;
}

/** The CPU profile of one Node process of our side. */
export interface NodeProfile {
  /** Its path in the process tree, e.g. `bash › node`. */
  process: string;
  summary: CpuSummary;
}

/** Everything profiled for one scenario. */
export interface ScenarioProfile {
  scenario: string;
  verdicts: Verdict[];
  bytes?: number;
  /** Our side first, then the baseline, then the floors. */
  runs: ProfiledRun[];
  node: NodeProfile[];
  /** Why a part is missing (e.g. the profiler wrote nothing). */
  notes: string[];
}

/** What {@link profileScenario} needs. */
export interface ProfileInput {
  name: string;
  bytes?: number;
  project: string;
  baseline: string;
  reset?: string;
  verdicts: Verdict[];
  floors: FloorSpec[];
}

/** `command` with every Node started as `<node> ` profiled into `dir`. */
export function withCpuProf(command: string, node: string, dir: string): string {
  return command.split(`${node} `).join(`${node} --cpu-prof --cpu-prof-dir=${dir} `);
}

const reset = async (cmd?: string) => {
  if (cmd) await execa('bash', ['-c', cmd]);
};

/** Runs our side under `--cpu-prof` and summarises each Node process's profile. */
async function nodeProfiles(
  sc: ProfileInput,
  ctx: { node: string; repo: string; work: string },
  notes: string[],
): Promise<NodeProfile[]> {
  const dir = await mkdtemp(join(ctx.work, 'cpuprof-'));
  const command = withCpuProf(sc.project, ctx.node, dir);
  if (command === sc.project) {
    notes.push('Our side starts no Node process by the bench’s node path: no CPU profile.');
    return [];
  }
  await reset(sc.reset);
  const run = await accountedRun(command, join(ctx.work, 'acct-cpuprof'));
  if (run.exitCode !== 0) notes.push(`The profiled run exited with ${run.exitCode}.`);
  const found = await readCpuProfiles(dir);
  if (found.length === 0)
    notes.push('node --cpu-prof wrote no profile (a Node process was killed?).');
  await rm(dir, { recursive: true, force: true });
  const map = sourceMapper(ctx.repo);
  return found.map(({ file, pid, profile }) => ({
    process: `${(pid !== undefined && run.pathOf(pid)) || file}${pid !== undefined ? ` (pid ${pid})` : ''}`,
    summary: summarizeCpuProfile(profile, ctx.repo, 10, map),
  }));
}

/**
 * Profiles one scenario (see the file comment). Never throws: what fails is
 * named in `notes`, so the bench's figures are written either way.
 */
export async function profileScenario(
  sc: ProfileInput,
  ctx: { node: string; repo: string; base: string },
): Promise<ScenarioProfile> {
  const out: ScenarioProfile = {
    scenario: sc.name,
    verdicts: sc.verdicts,
    ...(sc.bytes === undefined ? {} : { bytes: sc.bytes }),
    runs: [],
    node: [],
    notes: [],
  };
  await mkdir(ctx.base, { recursive: true });
  const work = await mkdtemp(join(ctx.base, 'profile-'));
  try {
    const acct = join(work, 'acct');
    const sides: { label: string; what?: string; command: string; reset?: string }[] = [
      { label: 'buttersink', command: sc.project, reset: sc.reset },
      { label: 'baseline', what: 'the plain design', command: sc.baseline, reset: sc.reset },
      ...sc.floors.map((f) => ({
        label: f.name,
        what: f.what,
        command: f.command,
        reset: f.reset ?? sc.reset,
      })),
    ];
    for (const side of sides) {
      console.error(`profiling: ${sc.name}: ${side.label}`);
      await reset(side.reset);
      const r = await accountedRun(side.command, acct);
      out.runs.push({
        label: side.label,
        ...(side.what ? { what: side.what } : {}),
        seconds: r.seconds,
        processes: r.processes,
        ...(r.exitCode === 0 ? {} : { exitCode: r.exitCode }),
      });
    }
    out.node = await nodeProfiles(sc, { ...ctx, work }, out.notes);
    await reset(sc.reset);
  } catch (err) {
    out.notes.push(`Profiling stopped: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}
