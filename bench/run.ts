/**
 * `npm run bench`: every scenario beside the plain baseline it replaces, on
 * the same data in the same run, alternating sides, median ratio of ≥ 5 pairs,
 * CPU (user + sys of each side's process tree) and peak RSS. Data lives on
 * RAM-backed btrfs images (/dev/shm) to keep disk noise out. Needs root,
 * btrfs-progs and a build.
 *
 * Every figure in bench/RESULTS.md is written here: each group's rows, notes
 * and run facts (date, machine, pairs) are kept in bench/results.json, and
 * RESULTS.md is regenerated from it after every run.
 * `BENCH_ONLY=group[,group…]` (or the groups as arguments: `npm run bench --
 * guard`) runs only those groups: pipe, sync, probe, guard, checksumdir, s3,
 * ssh, compress, rerun, planner; their sections replace the stored ones, the others stay as
 * their last run left them (and say when that was). A full run rewrites all.
 *
 * Each scenario with a goal of issue 12 (bench/goals.ts) gets a verdict; one
 * whose goal is not met is profiled right after its pairs (bench/profile.ts:
 * CPU per process, Node CPU profiles, design floors). `BENCH_PROFILE=1`
 * profiles every scenario with a goal, `BENCH_PROFILE=0` none.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { planSync } from '../src/planner/plan-sync.js';
import { syntheticInput } from '../src/planner/synthetic.js';
import { makeChecksumdirDataset } from './checksumdir.js';
import { s3Scenarios } from './s3.js';
import { guardScenarios } from './guard.js';
import { scenarios as sshScenarios } from './ssh.js';
import { rerunScenarios } from './rerun.js';
import { compressScenarios } from './compressed.js';
import { writeResults } from './results.js';
import type { RowGoals, Section } from './results.js';
import { formatRow, median, runMeasuredScenario, runScenario, timeChild } from './harness.js';
import type { Scenario, ScenarioResult } from './harness.js';
import { anyUnmet, evaluate, goalsFor } from './goals.js';
import { profileScenario } from './profile.js';
import type { ScenarioProfile } from './profile.js';
import { floorsFor } from './profile-floors.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** Where the images live; `BENCH_DIR` moves it (two benches at once must not share it). */
const BASE = process.env.BENCH_DIR ?? '/dev/shm/buttersink-bench';
const MiB = 1 << 20;
const sh = (cmd: string) => execa('bash', ['-o', 'pipefail', '-c', cmd]);
const pairs = Number(process.env.BENCH_PAIRS ?? 5);
/** Which scenarios with goals are profiled: those with a goal not met (default), all, none. */
const profileMode =
  process.env.BENCH_PROFILE === '1' ? 'all' : process.env.BENCH_PROFILE === '0' ? 'none' : 'unmet';
const GROUPS = [
  'pipe',
  'sync',
  'probe',
  'guard',
  'checksumdir',
  's3',
  'ssh',
  'compress',
  'rerun',
  'planner',
] as const;
const only = (process.argv.slice(2).join(',') || process.env.BENCH_ONLY || '')
  .split(',')
  .map((g) => g.trim())
  .filter((g) => g !== '');
for (const g of only) {
  if (!(GROUPS as readonly string[]).includes(g)) {
    throw new Error(`unknown bench group ${g}: choose from ${GROUPS.join(', ')}`);
  }
}
/** True when the group's scenarios run (all of them without BENCH_ONLY). */
const selected = (group: (typeof GROUPS)[number]) => only.length === 0 || only.includes(group);

async function mountImage(name: string, size: string, options?: string): Promise<string> {
  const img = join(BASE, `${name}.img`);
  const mnt = join(BASE, name);
  await mkdir(mnt, { recursive: true });
  const opts = options === undefined ? 'loop' : `loop,${options}`;
  await sh(
    `truncate -s ${size} ${img} && mkfs.btrfs -q -f ${img} && mount -o ${opts} ${img} ${mnt}`,
  );
  return mnt;
}

async function cleanup(): Promise<void> {
  for (const m of ['src', 'dst', 'sshdst', 'rerun', 'csrc', 'cdst', 'psrc', 'pdst']) {
    await sh(`mountpoint -q ${join(BASE, m)} && umount ${join(BASE, m)} || true`);
  }
  await rm(BASE, { recursive: true, force: true });
}

async function machine(): Promise<string> {
  const model =
    (await readFile('/proc/cpuinfo', 'utf8')).match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const kernel = (await sh('uname -r')).stdout;
  const progs = (await sh('btrfs --version')).stdout.split('\n')[0];
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  return `${model}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, kernel ${kernel}, ${progs}, Node ${process.version}; load average at the start ${load}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('npm run bench needs root (btrfs send/receive)');
  if (!existsSync(join(REPO, 'dist', 'bin', 'buttersink.js')))
    throw new Error('run npm run build first');
  // The commit measured, so a figure can be traced to the code it timed.
  const head = await execa('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { reject: false });
  const dirty = await execa('git', ['-C', REPO, 'status', '--porcelain', '--', 'src'], {
    reject: false,
  });
  const commit = `${String(head.stdout).trim() || 'unknown'}${String(dirty.stdout).trim() ? ' with uncommitted changes in src/' : ''}`;
  const started =
    new Date().toISOString().slice(0, 16).replace('T', ' ') + ` UTC, commit ${commit}`;
  const host = await machine();
  await cleanup();
  await mkdir(BASE, { recursive: true });
  type Group = (typeof GROUPS)[number];
  const results: (ScenarioResult & { group: Group })[] = [];
  const notes: { group: Group; text: string }[] = [];
  const push = (group: Group, ...rs: ScenarioResult[]) =>
    results.push(...rs.map((r) => ({ ...r, group })));
  const note = (group: Group, ...ts: string[]) =>
    notes.push(...ts.map((text) => ({ group, text })));
  let failure: unknown;
  /** The group being measured: on a failure, the one whose figures are incomplete. */
  let current: Group | undefined;
  const goalRows: { group: Group; row: RowGoals }[] = [];
  const profiles: { group: Group; profile: ScenarioProfile }[] = [];
  const node = process.execPath;
  const bs = `${node} ${REPO}dist/bin/buttersink.js`;
  /**
   * Runs a shell scenario, holds it to its goals and, when one is not met
   * (or BENCH_PROFILE=1), profiles it while its servers still run.
   */
  const measure = async (group: Group, sc: Scenario) => {
    console.error(`running: ${sc.name}`);
    const result = await runScenario({ ...sc, pairs });
    const row = results.filter((r) => r.group === group).length;
    push(group, result);
    const goals = sc.goals ?? goalsFor(group, sc.name, sc.project);
    if (goals.length === 0) return;
    const verdicts = goals.map((g) => evaluate(g, result));
    goalRows.push({ group, row: { row, scenario: sc.name, verdicts } });
    if (profileMode === 'none' || (profileMode === 'unmet' && !anyUnmet(verdicts))) return;
    const ctx = {
      group,
      name: sc.name,
      project: sc.project,
      baseline: sc.baseline,
      node,
      repo: REPO,
      cli: bs,
    };
    const { floors, notes: why } = floorsFor(
      sc.reset === undefined ? ctx : { ...ctx, reset: sc.reset },
    );
    const profile = await profileScenario(
      {
        name: sc.name,
        project: sc.project,
        baseline: sc.baseline,
        verdicts,
        floors,
        ...(sc.bytes === undefined ? {} : { bytes: sc.bytes }),
        ...(sc.reset === undefined ? {} : { reset: sc.reset }),
      },
      { node, repo: REPO, base: join(BASE, 'profile') },
    );
    profile.notes.unshift(...why);
    profiles.push({ group, profile });
  };
  try {
    const src = await mountImage('src', '4G');
    const dst = await mountImage('dst', '6G');

    // Data: 640 MiB of incompressible files; s2 adds 128 MiB and rewrites 16 MiB.
    console.error('creating data…');
    await sh(`btrfs subvolume create ${src}/live >/dev/null && mkdir ${src}/snaps`);
    for (let i = 0; i < 5; i++) await sh(`head -c ${128 * MiB} /dev/urandom > ${src}/live/f${i}`);
    await sh(`btrfs subvolume snapshot -r ${src}/live ${src}/snaps/s1 >/dev/null`);
    await sh(
      `head -c ${128 * MiB} /dev/urandom > ${src}/live/new && dd if=/dev/urandom of=${src}/live/f0 bs=1M count=16 seek=32 conv=notrunc status=none`,
    );
    await sh(`btrfs subvolume snapshot -r ${src}/live ${src}/snaps/s2 >/dev/null && sync`);
    const fullBytes = Number((await sh(`btrfs send -q ${src}/snaps/s1 | wc -c`)).stdout);
    const incrBytes = Number(
      (await sh(`btrfs send -q -p ${src}/snaps/s1 ${src}/snaps/s2 | wc -c`)).stdout,
    );
    await sh(`mkdir -p ${dst}/pipe ${dst}/full ${dst}/incr`);
    await sh(`btrfs send -q ${src}/snaps/s1 | btrfs receive -q ${dst}/incr/`);

    const scenarios: (Scenario & { group: (typeof GROUPS)[number] })[] = [
      {
        group: 'pipe',
        name: 'btrfs send | uuid-rewrite (to s1.part) + verify + progress | btrfs receive, then check + rename s1.part → s1 (full, 640 MiB)',
        bytes: fullBytes,
        // As the btrfs store's commit: receive under *.part, read the received subvolume, rename.
        project: `btrfs send -q ${src}/snaps/s1 | ${node} ${REPO}bench/filter.mjs s1.part 2>/dev/null | btrfs receive -q ${dst}/pipe/ && btrfs subvolume show ${dst}/pipe/s1.part >/dev/null && mv -T ${dst}/pipe/s1.part ${dst}/pipe/s1`,
        baseline: `btrfs send -q ${src}/snaps/s1 | btrfs receive -q ${dst}/pipe/`,
        reset: `for v in s1 s1.part; do btrfs subvolume delete -c ${dst}/pipe/$v >/dev/null 2>&1; done; true`,
      },
      {
        group: 'sync',
        name: 'buttersink full sync of one snapshot (probe + transfer)',
        bytes: fullBytes,
        project: `${bs} -q ${src}/snaps/s1 ${dst}/full/`,
        baseline: `btrfs send -q ${src}/snaps/s1 | btrfs receive -q ${dst}/full/`,
        reset: `btrfs subvolume delete -c ${dst}/full/s1 >/dev/null 2>&1; rm -f ${src}/snaps/*.bs; true`,
      },
      {
        group: 'sync',
        name: 'buttersink incremental sync (s2 from s1, probe + transfer)',
        bytes: incrBytes,
        project: `${bs} -q ${src}/snaps/s2 ${dst}/incr/`,
        baseline: `btrfs send -q -p ${src}/snaps/s1 ${src}/snaps/s2 | btrfs receive -q ${dst}/incr/`,
        reset: `btrfs subvolume delete -c ${dst}/incr/s2 >/dev/null 2>&1; rm -f ${src}/snaps/*.bs; true`,
      },
      {
        group: 'probe',
        name: 'size probe as a command (node start-up included) vs `btrfs send -p | wc -c`',
        project: `${node} ${REPO}bench/probe.mjs ${src}/snaps/s2 ${src}/snaps/s1 >/dev/null`,
        baseline: `btrfs send -q -p ${src}/snaps/s1 ${src}/snaps/s2 | wc -c >/dev/null`,
      },
    ];
    for (const { group, ...sc } of scenarios) {
      if (!selected(group)) continue;
      current = group;
      await measure(group, sc);
    }

    // The probe as the sync engine runs it (in-process) vs the original's
    // measurement, a whole counting test send: each side in its own child
    // (bench/probe-child.mjs) timing the pipeline alone, so each has its own
    // CPU and peak RSS.
    const s1 = `${src}/snaps/s1`;
    const s2 = `${src}/snaps/s2`;
    if (selected('probe')) {
      current = 'probe';
      console.error('running: size probe in-process');
      const side = (s: 'probe' | 'count') => () =>
        timeChild([node, `${REPO}bench/probe-child.mjs`, s, s2, s1]);
      push(
        'probe',
        await runMeasuredScenario({
          name: `size probe in-process (pipeline time in a child; CPU, RSS of the child): --no-data probe vs full counting send (${(incrBytes / 1e6).toFixed(0)} MB diff)`,
          bytes: incrBytes,
          project: side('probe'),
          baseline: side('count'),
          pairs,
        }),
      );

      // Probe accuracy on the same diff, and on the full send.
      for (const [what, args, real] of [
        ['incremental', `${src}/snaps/s2 ${src}/snaps/s1`, incrBytes],
        ['full', `${src}/snaps/s1`, fullBytes],
      ] as const) {
        const est = Number((await sh(`${node} ${REPO}bench/probe.mjs ${args}`)).stdout);
        note(
          'probe',
          `Size probe accuracy (${what}): estimate ${est} B vs real stream ${real} B: error ${((100 * (est - real)) / real).toFixed(3)} %.`,
        );
      }
    }

    // Guarded receive (receive-guard) vs unguarded, same data; before the
    // S3/SSH scenarios, which add received copies of s1 to dst.
    if (selected('guard')) {
      current = 'guard';
      const guard = await guardScenarios({
        src,
        dst,
        node,
        repo: REPO,
        fullBytes,
        incrBytes,
        pairs,
      });
      push('guard', ...guard.results);
      note('guard', ...guard.notes);
    }

    // checksumdir: ≥ 5,000 files, ≥ 800 MB.
    if (selected('checksumdir')) {
      current = 'checksumdir';
      console.error('creating checksumdir data…');
      const tree = join(BASE, 'tree');
      await makeChecksumdirDataset(tree);
      const treeBytes = Number((await sh(`du -sb --apparent-size ${tree} | cut -f1`)).stdout);
      const files = Number((await sh(`find ${tree} -type f | wc -l`)).stdout);
      const out = join(BASE, 'records');
      await mkdir(out);
      const ours = `cd ${out} && ${node} ${REPO}dist/bin/checksumdir.js -q ${tree} >/dev/null`;
      for (const [label, baseline, n] of [
        [
          'xargs -P2 sha256sum',
          `cd ${tree} && find . -type f -print0 | xargs -0 -P2 sha256sum >/dev/null`,
          pairs,
        ],
        [
          'one sha256sum per file',
          `cd ${tree} && find . -type f -exec sha256sum {} \\; >/dev/null`,
          3,
        ],
      ] as const) {
        console.error(`running: checksumdir vs ${label}`);
        push(
          'checksumdir',
          await runScenario({
            name: `checksumdir (${files} files, ${(treeBytes / 1e6).toFixed(0)} MB) vs ${label}`,
            bytes: treeBytes,
            project: ours,
            baseline,
            pairs: n,
          }),
        );
      }
    }

    // S3 (moto_server on 127.0.0.1) and SSH (sshd on 127.0.0.1) on the same snapshot.
    if (selected('s3')) {
      current = 's3';
      console.error('setting up S3 scenarios…');
      const s3 = await s3Scenarios({
        bs,
        snapshot: `${src}/snaps/s1`,
        dstDir: `${dst}/s3-restore`,
        bytes: fullBytes,
        pairs,
      });
      try {
        for (const sc of s3.scenarios) await measure('s3', sc);
      } finally {
        await s3.stop();
      }
    }
    // The SSH copies on a filesystem of their own: `dst` already holds received
    // copies of s1, and a destination refuses a second subvolume with the same UUID.
    if (selected('ssh')) {
      current = 'ssh';
      const sshDst = await mountImage('sshdst', '2G');
      for (const sc of await sshScenarios({ src, dst: sshDst, node, repo: REPO, fullBytes })) {
        await measure('ssh', sc);
      }
    }
    // Compressible data: compressed send data, S3 archives (own images).
    if (selected('compress')) {
      current = 'compress';
      const comp = await compressScenarios({ bs, mount: mountImage });
      try {
        for (const sc of comp.scenarios) await measure('compress', sc);
        note('compress', ...(await comp.notes()));
      } finally {
        await comp.stop();
      }
    }
    // Fixed costs: a rerun over 1,000 snapshots, and small incrementals (own image).
    if (selected('rerun')) {
      current = 'rerun';
      const root = await mountImage('rerun', '3G');
      for (const sc of await rerunScenarios({ root, bs })) await measure('rerun', sc);
    }
  } catch (err) {
    failure = err;
  } finally {
    await cleanup();
  }
  if (failure !== undefined) {
    // Keep what finished: the groups measured before the one that failed.
    const done = new Set(results.map((r) => r.group).filter((g) => g !== current));
    only.splice(0, only.length, ...done);
    if (done.size === 0) throw failure;
    console.error(`bench failed; writing the groups that finished: ${[...done].join(', ')}`);
  }

  // Planner on synthetic sets.
  const plannerLines: string[] = [];
  for (const n of selected('planner') ? [1_000, 10_000] : []) {
    const input = syntheticInput({ snapshots: n });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      planSync(input);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    plannerLines.push(
      `| planner, ${n.toLocaleString('en')} synthetic snapshots (btrfs → btrfs) | ${median(times).toFixed(0)} ms (median of 5) |`,
    );
  }

  const sections: Section[] = GROUPS.filter(selected).map((group) => {
    const goals = goalRows.filter((g) => g.group === group).map((g) => g.row);
    return {
      group,
      run: started,
      machine: host,
      pairs,
      rows: results.filter((r) => r.group === group).map(formatRow),
      extra: group === 'planner' ? ['| planner | time |', '|---|---|', ...plannerLines] : [],
      notes: notes.filter((n) => n.group === group).map((n) => n.text),
      // Only groups with goals carry goal columns and profiles.
      ...(goals.length === 0
        ? {}
        : {
            goals,
            profiles: profiles.filter((p) => p.group === group).map((p) => p.profile),
          }),
    };
  });
  const md = await writeResults(join(REPO, 'bench'), sections, { started, machine: host });
  console.log(md);
  if (failure !== undefined) throw failure;
}

await main();
// The bench sshd is a child that would keep the event loop alive; it is stopped on exit.
process.exit(0);
