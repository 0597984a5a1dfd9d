/**
 * Benchmark scenarios for the S3 store, against moto_server on 127.0.0.1 (the same
 * endpoint for both sides):
 * - btrfs → S3: `buttersink <snap> s3://…/` vs `btrfs send <snap> | aws s3 cp - s3://…`
 * - S3 → btrfs: `buttersink s3://…/<snap> <dir>/` vs `aws s3 cp s3://… - | btrfs receive <dir>`
 *
 * `s3Scenarios(ctx)` starts moto, creates the buckets, stores the diff the download
 * scenario reads, and returns harness scenarios plus `stop()`. Standalone
 * (`node --import tsx bench/s3.ts [MiB]`, as root) it makes its own btrfs images in
 * /dev/shm and prints a Markdown table; `BENCH_PAIRS`, `BENCH_S3_PART_MIB`,
 * `BENCH_S3_JOBS` override pairs, `--part-size` and `--jobs`.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { MOTO_ENV, launchMoto } from '../test/fixtures/moto-server.js';
import { formatRow, runScenario, tableHeader } from './harness.js';
import type { Scenario } from './harness.js';

const sh = (cmd: string) => execa('bash', ['-o', 'pipefail', '-c', cmd]);

/** What {@link s3Scenarios} needs. */
export interface S3BenchContext {
  /** Shell command running the buttersink CLI, e.g. `node /repo/dist/bin/buttersink.js`. */
  bs: string;
  /** Absolute path of the read-only snapshot to move (its directory is the source store). */
  snapshot: string;
  /** A directory on btrfs for received snapshots (created when missing). */
  dstDir: string;
  /** Stream size in bytes, for throughput. */
  bytes?: number;
  /** Pairs per scenario. Default 5. */
  pairs?: number;
  /** `--part-size` in MiB. Default 16 (the CLI default). */
  partSizeMiB?: number;
  /** `--jobs`. Default 4 (the CLI default). */
  jobs?: number;
}

/** Scenarios ready for `runScenario`, and the moto server they use. */
export interface S3Bench {
  readonly endpoint: string;
  readonly scenarios: Scenario[];
  /** Stops moto_server. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts moto (fake credentials in this process's environment, inherited by the
 * benchmark commands), prepares buckets and the stored diff, and returns the two
 * scenarios. Call `stop()` afterwards.
 */
export async function s3Scenarios(ctx: S3BenchContext): Promise<S3Bench> {
  Object.assign(process.env, MOTO_ENV);
  const { endpoint, stop } = await launchMoto();
  try {
    const aws = `aws --endpoint-url ${endpoint}`;
    const name = ctx.snapshot.split('/').pop()!;
    const flags = `-q --endpoint-url ${endpoint} --part-size ${ctx.partSizeMiB ?? 16} --jobs ${ctx.jobs ?? 4}`;
    const ours = join(ctx.dstDir, 's3-ours');
    const base = join(ctx.dstDir, 's3-base');
    await mkdir(ours, { recursive: true });
    await mkdir(base, { recursive: true });
    await sh(`${aws} s3 mb s3://bench-up >/dev/null && ${aws} s3 mb s3://bench-down >/dev/null`);
    await sh(`${ctx.bs} ${flags} ${ctx.snapshot} s3://bench-down/p/`);
    const key = (await sh(`${aws} s3 ls --recursive s3://bench-down/p/${name}/`)).stdout
      .trim()
      .split(/\s+/)
      .pop()!;
    const clearDst = `for d in ${ours}/* ${base}/*; do [ -e "$d" ] && btrfs subvolume delete "$d" >/dev/null; done; true`;
    const pairs = ctx.pairs ?? 5;
    const size = ctx.bytes === undefined ? {} : { bytes: ctx.bytes };
    const scenarios: Scenario[] = [
      {
        name: `btrfs → S3 (moto), ${name}: buttersink vs btrfs send → aws s3 cp -`,
        ...size,
        project: `${ctx.bs} ${flags} ${ctx.snapshot} s3://bench-up/ours/`,
        baseline: `btrfs send -q ${ctx.snapshot} | ${aws} s3 cp - s3://bench-up/base/${name} --quiet`,
        reset: `${aws} s3 rm --recursive --quiet s3://bench-up/`,
        pairs,
      },
      {
        name: `S3 (moto) → btrfs, ${name}: buttersink vs aws s3 cp - → btrfs receive`,
        ...size,
        project: `${ctx.bs} ${flags} s3://bench-down/p/${name} ${ours}/`,
        baseline: `${aws} s3 cp s3://bench-down/${key} - --quiet | btrfs receive -q ${base}/`,
        reset: clearDst,
        pairs,
      },
    ];
    return { endpoint, scenarios, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main(argv: string[]): Promise<void> {
  const mib = Number(argv[0] ?? 512);
  const dir = '/dev/shm/buttersink-bench-s3';
  const repo = fileURLToPath(new URL('..', import.meta.url));
  const bs = existsSync(join(repo, 'dist/bin/buttersink.js'))
    ? `${process.execPath} ${join(repo, 'dist/bin/buttersink.js')}`
    : `${process.execPath} --import tsx ${join(repo, 'src/bin/buttersink.ts')}`;
  const mount = async (name: string) => {
    const img = join(dir, `${name}.img`);
    const mnt = join(dir, name);
    await mkdir(mnt, { recursive: true });
    await sh(`truncate -s 4G ${img} && mkfs.btrfs -q -f ${img} && mount -o loop ${img} ${mnt}`);
    return mnt;
  };
  await mkdir(dir, { recursive: true });
  let bench: S3Bench | undefined;
  try {
    const src = await mount('src');
    const dst = await mount('dst');
    await sh(`btrfs subvolume create ${src}/live >/dev/null && mkdir ${src}/snaps`);
    await sh(`head -c ${mib << 20} /dev/urandom > ${src}/live/data`);
    await sh(`btrfs subvolume snapshot -r ${src}/live ${src}/snaps/s1 >/dev/null && sync`);
    const bytes = Number((await sh(`btrfs send -q ${src}/snaps/s1 | wc -c`)).stdout);
    bench = await s3Scenarios({
      bs,
      snapshot: `${src}/snaps/s1`,
      dstDir: dst,
      bytes,
      pairs: Number(process.env.BENCH_PAIRS ?? 5),
      partSizeMiB: Number(process.env.BENCH_S3_PART_MIB ?? 16),
      jobs: Number(process.env.BENCH_S3_JOBS ?? 4),
    });
    console.log(tableHeader);
    for (const sc of bench.scenarios) console.log(formatRow(await runScenario(sc)));
  } finally {
    await bench?.stop();
    for (const m of ['src', 'dst']) await sh(`umount ${join(dir, m)} || true`);
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
