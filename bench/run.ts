/**
 * `npm run bench`: every scenario beside the plain baseline it replaces, on
 * the same data in the same run, alternating sides, median ratio of ≥ 5 pairs,
 * peak RSS. Data lives on RAM-backed btrfs images (/dev/shm) to keep disk
 * noise out. Writes bench/RESULTS.md. Needs root, btrfs-progs and a build.
 *
 * `BENCH_ONLY=group[,group…]` (or the groups as arguments: `npm run bench --
 * guard`) runs only those groups of scenarios: pipe, sync, probe, guard,
 * checksumdir, s3, ssh, planner. A selective run prints its table and leaves
 * bench/RESULTS.md alone.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
import { btrfsSend } from '../src/stages/btrfs-send.js';
import { countBytes, noDataSizeProbe } from '../src/stages/size-probe.js';
import { runPipeline } from '../src/streams/pipeline.js';
import { formatRow, median, runFnScenario, runScenario, tableHeader } from './harness.js';
import type { Scenario, ScenarioResult } from './harness.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BASE = '/dev/shm/buttersink-bench';
const MiB = 1 << 20;
const sh = (cmd: string) => execa('bash', ['-o', 'pipefail', '-c', cmd]);
const pairs = Number(process.env.BENCH_PAIRS ?? 5);
const GROUPS = ['pipe', 'sync', 'probe', 'guard', 'checksumdir', 's3', 'ssh', 'planner'] as const;
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

async function mountImage(name: string, size: string): Promise<string> {
  const img = join(BASE, `${name}.img`);
  const mnt = join(BASE, name);
  await mkdir(mnt, { recursive: true });
  await sh(`truncate -s ${size} ${img} && mkfs.btrfs -q -f ${img} && mount -o loop ${img} ${mnt}`);
  return mnt;
}

async function cleanup(): Promise<void> {
  for (const m of ['src', 'dst']) {
    await sh(`mountpoint -q ${join(BASE, m)} && umount ${join(BASE, m)} || true`);
  }
  await rm(BASE, { recursive: true, force: true });
}

async function machine(): Promise<string> {
  const model =
    (await readFile('/proc/cpuinfo', 'utf8')).match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const kernel = (await sh('uname -r')).stdout;
  const progs = (await sh('btrfs --version')).stdout.split('\n')[0];
  return `${cpus().length} × ${model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, kernel ${kernel}, ${progs}, Node ${process.version}; data on btrfs loop images in /dev/shm`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('npm run bench needs root (btrfs send/receive)');
  if (!existsSync(join(REPO, 'dist', 'bin', 'buttersink.js')))
    throw new Error('run npm run build first');
  await cleanup();
  await mkdir(BASE, { recursive: true });
  const results: ScenarioResult[] = [];
  const notes: string[] = [];
  try {
    const src = await mountImage('src', '4G');
    const dst = await mountImage('dst', '6G');
    const node = process.execPath;
    const bs = `${node} ${REPO}dist/bin/buttersink.js`;

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
        name: 'btrfs send | uuid-rewrite + verify + progress | btrfs receive (full, 640 MiB)',
        bytes: fullBytes,
        project: `btrfs send -q ${src}/snaps/s1 | ${node} ${REPO}bench/filter.mjs 2>/dev/null | btrfs receive -q ${dst}/pipe/`,
        baseline: `btrfs send -q ${src}/snaps/s1 | btrfs receive -q ${dst}/pipe/`,
        reset: `btrfs subvolume delete -c ${dst}/pipe/s1 >/dev/null 2>&1; true`,
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
      console.error(`running: ${sc.name}`);
      results.push(await runScenario({ ...sc, pairs }));
    }

    // The probe as the sync engine runs it (in-process) vs the original's
    // measurement, a whole counting test send, also in-process.
    const s1 = `${src}/snaps/s1`;
    const s2 = `${src}/snaps/s2`;
    if (selected('probe')) {
      console.error('running: size probe in-process');
      results.push(
        await runFnScenario({
          name: `size probe in-process: --no-data probe vs full counting send (${(incrBytes / 1e6).toFixed(0)} MB diff)`,
          bytes: incrBytes,
          project: async () => {
            await runPipeline([
              btrfsSend({ path: s2, parent: s1, noData: true }),
              noDataSizeProbe(),
            ] as const);
          },
          baseline: async () => {
            await runPipeline([btrfsSend({ path: s2, parent: s1 }), countBytes()] as const);
          },
          pairs,
        }),
      );

      // Probe accuracy on the same diff, and on the full send.
      for (const [what, args, real] of [
        ['incremental', `${src}/snaps/s2 ${src}/snaps/s1`, incrBytes],
        ['full', `${src}/snaps/s1`, fullBytes],
      ] as const) {
        const est = Number((await sh(`${node} ${REPO}bench/probe.mjs ${args}`)).stdout);
        notes.push(
          `Size probe accuracy (${what}): estimate ${est} B vs real stream ${real} B: error ${((100 * (est - real)) / real).toFixed(3)} %.`,
        );
      }
    }

    // Guarded receive (receive-guard) vs unguarded, same data; before the
    // S3/SSH scenarios, which add received copies of s1 to dst.
    if (selected('guard')) {
      const guard = await guardScenarios({
        src,
        dst,
        node,
        repo: REPO,
        fullBytes,
        incrBytes,
        pairs,
      });
      results.push(...guard.results);
      notes.push(...guard.notes);
    }

    // checksumdir: ≥ 5,000 files, ≥ 800 MB.
    if (selected('checksumdir')) {
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
        results.push(
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
      console.error('setting up S3 scenarios…');
      const s3 = await s3Scenarios({
        bs,
        snapshot: `${src}/snaps/s1`,
        dstDir: `${dst}/s3-restore`,
        bytes: fullBytes,
        pairs,
      });
      try {
        for (const sc of s3.scenarios) {
          console.error(`running: ${sc.name}`);
          results.push(await runScenario({ ...sc, pairs }));
        }
      } finally {
        await s3.stop();
      }
    }
    if (selected('ssh'))
      for (const sc of await sshScenarios({ src, dst, node, repo: REPO, fullBytes })) {
        console.error(`running: ${sc.name}`);
        results.push(await runScenario({ ...sc, pairs }));
      }
  } finally {
    await cleanup();
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

  if (only.length > 0) {
    // A selective run: print its rows, keep RESULTS.md (a full run's figures).
    console.log(
      [
        `Run: ${new Date().toISOString().slice(0, 10)}, ${await machine()}; ${pairs} pairs; groups ${only.join(', ')}.`,
        '',
        tableHeader,
        ...results.map(formatRow),
        ...(plannerLines.length ? ['', '| planner | time |', '|---|---|', ...plannerLines] : []),
        '',
        ...notes.map((n) => `- ${n}`),
      ].join('\n'),
    );
    return;
  }
  const date = new Date().toISOString().slice(0, 10);
  const md = [
    '# Benchmark results',
    '',
    `Latest run: ${date}, ${await machine()}.`,
    `Each scenario alternates buttersink and its plain baseline on the same data (${pairs} pairs unless noted); ratio = baseline time / buttersink time per pair, median (≥ 1 means buttersink is as fast or faster). Peak RSS is the largest process of each command (GNU time).`,
    '',
    tableHeader,
    ...results.map(formatRow),
    '',
    '| planner | time |',
    '|---|---|',
    ...plannerLines,
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    'Run `npm run build && npm run bench` (as root) to reproduce; `BENCH_PAIRS=N` changes the number of pairs; `BENCH_ONLY=guard` (or `npm run bench -- guard`) runs one group of scenarios without rewriting this file.',
    '',
  ].join('\n');
  await writeFile(join(REPO, 'bench', 'RESULTS.md'), md);
  console.log(md);
}

await main();
// The bench sshd is a child that would keep the event loop alive; it is stopped on exit.
process.exit(0);
