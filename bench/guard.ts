/**
 * Benchmark scenarios for the receive guard (src/stages/receive-guard.ts),
 * selected in bench/run.ts as `guard` (`BENCH_ONLY=guard npm run bench`):
 *
 * - btrfs → btrfs through the sync engine's `transfer()`, guarded
 *   (`receive(…, { trustedSource: false })`, what an SSH/S3/server stream gets)
 *   against unguarded (`trustedSource: true`, a local sync), full s1 and
 *   incremental s2 from s1, same data, alternating pairs. Each run is a child
 *   process (bench/guard-child.ts) under GNU time: wall time is `transfer()`
 *   alone as the child measures it, peak RSS the child's largest process.
 * - receiveGuard alone against streamVerify alone over the same send stream
 *   held in memory (1 MiB chunks, as btrfs-send emits them), in-process:
 *   the CPU cost per GB of each parser pass.
 * - the parsing stages of an untrusted receive (rewrite, guard with verify,
 *   `.part` rename) on one shared parse against a parse each (`merge: false`),
 *   over the same in-memory stream.
 */
import { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import { subvolumeShow } from '../src/btrfs/subvolume-show.js';
import { btrfsSend } from '../src/stages/btrfs-send.js';
import { receiveGuard } from '../src/stages/receive-guard.js';
import { countBytes } from '../src/stages/size-probe.js';
import { streamVerify } from '../src/stages/stream-verify.js';
import { uuidRewrite } from '../src/stages/uuid-rewrite.js';
import { runPipeline } from '../src/streams/pipeline.js';
import { sinkStage, sourceStage } from '../src/streams/stage.js';
import type { TransformStage } from '../src/streams/stage.js';
import { TIME_FORMAT, median, parseTime, runFnScenario, runMeasuredScenario } from './harness.js';
import type { Run, ScenarioResult } from './harness.js';

/** What bench/run.ts hands over. */
export interface GuardBenchContext {
  /** Mounted source btrfs with read-only snapshots `snaps/s1` and `snaps/s2` (s2 from s1). */
  src: string;
  /** Mounted destination btrfs; `incr/s1` is a received copy of s1, the only one on it. */
  dst: string;
  node: string;
  /** Repository root, with a trailing slash. */
  repo: string;
  fullBytes: number;
  incrBytes: number;
  pairs: number;
}

const sh = (cmd: string) => execa('bash', ['-o', 'pipefail', '-c', cmd]);

/**
 * Runs one transfer in a child; checks the receive stages are the ones this
 * side is about. Pushes the child's user + sys CPU seconds (GNU time, btrfs
 * children included, Node start-up too) to `cpu`.
 */
async function timeTransfer(
  ctx: GuardBenchContext,
  args: string[],
  size: number,
  guarded: boolean,
  cpu: number[],
): Promise<Run> {
  const res = await execa(
    '/usr/bin/time',
    [
      '-f',
      TIME_FORMAT,
      ctx.node,
      '--import',
      'tsx',
      `${ctx.repo}bench/guard-child.ts`,
      ...args,
      guarded ? 'guarded' : 'trusted',
      String(size),
    ],
    { cwd: ctx.repo, reject: false },
  );
  if (res.exitCode !== 0) {
    throw new Error(`guard bench child failed (${res.exitCode}): ${args.join(' ')}\n${res.stderr}`);
  }
  const out = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as {
    seconds: number;
    stages: string[];
  };
  if (out.stages.includes('receive-guard') !== guarded) {
    throw new Error(
      `${guarded ? 'guarded' : 'unguarded'} run used receive stages ${out.stages.join(', ')}`,
    );
  }
  const t = parseTime(res.stderr);
  cpu.push(t.userSeconds + t.sysSeconds);
  return { ...t, seconds: out.seconds };
}

/** The send stream of `path` (from `parent`) in memory, as btrfs-send's chunks. */
async function capture(path: string, parent?: string): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await runPipeline([
    btrfsSend({ path, ...(parent ? { parent } : {}) }),
    sinkStage('memory', sink),
  ] as const);
  return chunks;
}

async function passThrough(
  chunks: Buffer[],
  stages: TransformStage<unknown> | TransformStage<unknown>[],
  merge = true,
): Promise<string[]> {
  const list = Array.isArray(stages) ? stages : [stages];
  const counter = countBytes();
  const ran = await runPipeline(
    [sourceStage('memory', Readable.from(chunks, { objectMode: false })), ...list, counter],
    { merge },
  );
  const got = await counter.result;
  // A rename changes the stream's length by the name's: allow for it.
  const want = chunks.reduce((n, c) => n + c.length, 0);
  if (Math.abs(got - want) > 64)
    throw new Error(`${ran.streams.join(' | ')} passed ${got} of ${want} bytes`);
  return ran.streams;
}

/**
 * The parsing stages of an untrusted local receive, as sync() and the btrfs
 * store chain them: identity rewrite, guard with verification, `.part` rename.
 */
function untrustedReceiveStages(target: string): TransformStage<unknown>[] {
  return [
    uuidRewrite({ target: { uuid: target } }),
    receiveGuard({ target, verify: true }),
    uuidRewrite({ subvolumeName: 's1.part' }),
  ];
}

/** Runs the guard scenarios; returns their rows and notes for RESULTS.md. */
export async function guardScenarios(
  ctx: GuardBenchContext,
): Promise<{ results: ScenarioResult[]; notes: string[] }> {
  const { src, dst, pairs } = ctx;
  const results: ScenarioResult[] = [];
  const notes: string[] = [];
  const s1 = `${src}/snaps/s1`;
  const s2 = `${src}/snaps/s2`;
  const [u1, u2] = [(await subvolumeShow(s1)).uuid!, (await subvolumeShow(s2)).uuid!];
  // A second received copy of s1 would make even the trusted incremental guarded (clonesExact).
  const received = (
    await sh(`btrfs subvolume list -R ${dst} | grep -c "received_uuid ${u1} " || true`)
  ).stdout.trim();
  if (received !== '1') {
    throw new Error(
      `guard bench: ${dst} must hold exactly one received copy of s1 (has ${received})`,
    );
  }
  const clear = (dir: string, name: string) =>
    `btrfs subvolume delete -c ${dir}/${name} >/dev/null 2>&1; btrfs subvolume delete -c ${dir}/${name}.part >/dev/null 2>&1; true`;
  await sh(`mkdir -p ${dst}/guard`);

  for (const sc of [
    { what: 'full s1, 640 MiB', dir: `${dst}/guard`, to: 's1', from: '-', bytes: ctx.fullBytes },
    {
      what: 'incremental s2 from s1',
      dir: `${dst}/incr`,
      to: 's2',
      from: 's1',
      bytes: ctx.incrBytes,
    },
  ]) {
    const args = [`${src}/snaps`, sc.dir, sc.to, sc.from];
    const name = `btrfs → btrfs transfer() (${sc.what}): guarded (trustedSource false, + receive-guard) vs unguarded (trustedSource true)`;
    console.error(`running: ${name}`);
    const cpu = { guarded: [] as number[], unguarded: [] as number[] };
    const r = await runMeasuredScenario({
      name,
      bytes: sc.bytes,
      project: () => timeTransfer(ctx, args, sc.bytes, true, cpu.guarded),
      baseline: () => timeTransfer(ctx, args, sc.bytes, false, cpu.unguarded),
      reset: async () => void (await sh(clear(sc.dir, sc.to))),
      pairs,
    });
    results.push(r);
    const perPair = r.project.map((p, i) => p.seconds / r.baseline[i]!.seconds);
    const extra = cpu.guarded.map((g, i) => g - cpu.unguarded[i]!);
    notes.push(
      `Receive guard, ${sc.what}: guarded/unguarded wall time, median of ${pairs} pairs ${median(perPair).toFixed(2)}× (pairs: ${perPair.map((x) => x.toFixed(2)).join(', ')}); wall times are transfer() alone (child process, Node start-up excluded), peak RSS is the child's largest process (Node + tsx); CPU user+sys per run, median: guarded ${median(cpu.guarded).toFixed(2)} s, unguarded ${median(cpu.unguarded).toFixed(2)} s, extra per pair ${median(extra).toFixed(2)} s.`,
    );
  }

  // The parser passes alone, over the stream in memory.
  for (const m of [
    { what: 'full s1', stream: () => capture(s1), guard: () => receiveGuard({ target: u1 }) },
    {
      what: 'incremental s2 from s1, parentRoot lookups',
      stream: () => capture(s2, s1),
      guard: () => receiveGuard({ target: u2, parent: u1, parentRoot: s1 }),
    },
  ]) {
    const chunks = await m.stream();
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    const name = `in-memory stream (${m.what}, ${(bytes / 1e6).toFixed(0)} MB): receiveGuard alone vs streamVerify alone`;
    console.error(`running: ${name}`);
    const r = await runFnScenario({
      name,
      bytes,
      project: () => passThrough(chunks, m.guard()).then(() => undefined),
      baseline: () => passThrough(chunks, streamVerify()).then(() => undefined),
      pairs,
    });
    results.push(r);
    const g = median(r.project.map((x) => x.seconds));
    const v = median(r.baseline.map((x) => x.seconds));
    notes.push(
      `CPU per GB of stream (${m.what}, in memory, one core): receiveGuard ${((g / bytes) * 1e9).toFixed(2)} s/GB (${(bytes / 1e6 / g).toFixed(0)} MB/s), streamVerify ${((v / bytes) * 1e9).toFixed(2)} s/GB (${(bytes / 1e6 / v).toFixed(0)} MB/s).`,
    );
  }

  // The parsing stages of an untrusted receive: one shared parse against one parse each.
  const chunks = await capture(s1);
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const merged = await passThrough(chunks, untrustedReceiveStages(u1));
  const apart = await passThrough(chunks, untrustedReceiveStages(u1), false);
  const name = `in-memory stream (full s1, ${(bytes / 1e6).toFixed(0)} MB): uuid-rewrite, receive-guard (verify), uuid-rewrite (.part): one shared parse (${merged[1]}) vs a parse each (merge: false)`;
  console.error(`running: ${name}`);
  if (merged.length !== 3 || apart.length !== 5) {
    throw new Error(`shared-parse bench: ran ${merged.join(' | ')} and ${apart.join(' | ')}`);
  }
  results.push(
    await runFnScenario({
      name,
      bytes,
      project: () => passThrough(chunks, untrustedReceiveStages(u1)).then(() => undefined),
      baseline: () => passThrough(chunks, untrustedReceiveStages(u1), false).then(() => undefined),
      pairs,
    }),
  );
  return { results, notes };
}
