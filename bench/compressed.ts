/**
 * Benchmark scenarios on compressible, realistic data, selected in bench/run.ts
 * as `compress` (`npm run bench -- compress`):
 *
 * - Local full sync from a `compress=zstd` filesystem into another one:
 *   buttersink (compressed send data by default, protocol 2) vs the plain
 *   `btrfs send | btrfs receive` a user would type (protocol 1, data
 *   decompressed and recompressed). Goal (issue 12): ≥ 1.4×.
 * - btrfs → S3 with `--compress zstd --encrypt-to <age recipient>`, and with
 *   `--compress zstd` alone, vs the plain buttersink upload of the same
 *   snapshot (issue 14): time here, bytes stored in the notes.
 * - S3 → btrfs restore of the encrypted + compressed diff vs the plain diff.
 *
 * The data is a copy of this machine's own /usr/share, /usr/include and
 * Python standard library: documentation, locales, headers, sources, a few
 * already-compressed files — what a system backup holds. Each filesystem is a
 * loop image of its own (the caller mounts them), so other groups' data is
 * untouched.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { MOTO_ENV, launchMoto } from '../test/fixtures/moto-server.js';
import type { Scenario } from './harness.js';

const sh = (cmd: string) => execa('bash', ['-o', 'pipefail', '-c', cmd]);

/** The trees copied into the data set, those that exist on this machine. */
const TREES = ['/usr/share', '/usr/include', '/usr/lib/python3.11'];

/** What bench/run.ts hands over. */
export interface CompressBenchContext {
  /** The buttersink command line prefix (`node …/dist/bin/buttersink.js`). */
  bs: string;
  /** Mounts a fresh loop image `name` of `size` with extra mount options; returns its mount point. */
  mount(name: string, size: string, options?: string): Promise<string>;
}

/** Scenarios, the notes measured on the side, and the moto server to stop. */
export interface CompressBench {
  scenarios: Scenario[];
  /** Facts measured once: stream sizes, the data set, bytes stored per upload mode. */
  notes(): Promise<string[]>;
  /** Stops moto_server. Idempotent. */
  stop(): Promise<void>;
}

/** Copies the data set into a new subvolume `live` under `root` and snapshots it as `snaps/c1`. */
async function makeSnapshot(root: string): Promise<string> {
  await sh(`btrfs subvolume create ${root}/live >/dev/null && mkdir ${root}/snaps`);
  for (const tree of TREES.filter((t) => existsSync(t))) {
    await sh(`mkdir -p ${root}/live${tree} && cp -a ${tree}/. ${root}/live${tree}/`);
  }
  await sh(`btrfs subvolume snapshot -r ${root}/live ${root}/snaps/c1 >/dev/null && sync`);
  return `${root}/snaps/c1`;
}

const streamBytes = async (cmd: string) => Number((await sh(`${cmd} | wc -c`)).stdout);

/** Total size of the objects under an S3 prefix, from `aws s3 ls --summarize`. */
async function storedBytes(aws: string, url: string): Promise<number> {
  const out = (await sh(`${aws} s3 ls --recursive --summarize ${url}`)).stdout;
  return Number(/Total Size: (\d+)/.exec(out)?.[1] ?? NaN);
}

const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

/**
 * Mounts the images (`csrc`, `cdst` with compress=zstd; `psrc`, `pdst`
 * plain), makes the data, starts moto and stores the diffs the restore
 * scenario reads.
 */
export async function compressScenarios(ctx: CompressBenchContext): Promise<CompressBench> {
  const csrc = await ctx.mount('csrc', '4G', 'compress=zstd');
  const cdst = await ctx.mount('cdst', '4G', 'compress=zstd');
  const psrc = await ctx.mount('psrc', '4G');
  const pdst = await ctx.mount('pdst', '6G');
  console.error('creating compressible data…');
  const [zsnap, psnap] = [await makeSnapshot(csrc), await makeSnapshot(psrc)];
  await sh(`mkdir -p ${cdst}/ours ${cdst}/base ${pdst}/enc ${pdst}/plain`);
  const key = join(pdst, 'age-key.txt');
  await sh(`age-keygen -o ${key} 2>/dev/null`);
  const recipient = (await sh(`age-keygen -y ${key}`)).stdout.trim();

  Object.assign(process.env, MOTO_ENV);
  const moto = await launchMoto();
  const aws = `aws --endpoint-url ${moto.endpoint}`;
  const s3 = `-q --endpoint-url ${moto.endpoint}`;
  const archive = `--compress zstd --encrypt-to ${recipient}`;
  await sh(`${aws} s3 mb s3://bench-arch >/dev/null && ${aws} s3 mb s3://bench-keep >/dev/null`);
  await sh(`${ctx.bs} ${s3} ${archive} ${psnap} s3://bench-keep/enc/`);
  await sh(`${ctx.bs} ${s3} ${psnap} s3://bench-keep/plain/`);

  const plainBytes = await streamBytes(`btrfs send -q ${psnap}`);
  const v1 = await streamBytes(`btrfs send -q ${zsnap}`);
  const v2 = await streamBytes(`btrfs send -q --proto 2 --compressed-data ${zsnap}`);
  const clearS3 = `${aws} s3 rm --recursive --quiet s3://bench-arch/`;
  const scenarios: Scenario[] = [
    {
      name: `local full sync, compress=zstd → compress=zstd (${mb(v1)} of data): buttersink (compressed send data, ${mb(v2)} stream) vs btrfs send | btrfs receive (protocol 1)`,
      bytes: v1,
      project: `${ctx.bs} -q ${zsnap} ${cdst}/ours/`,
      baseline: `btrfs send -q ${zsnap} | btrfs receive -q ${cdst}/base/`,
      reset: `for d in ${cdst}/ours/c1 ${cdst}/base/c1; do [ -e $d ] && btrfs subvolume delete -c $d >/dev/null; done; rm -f ${csrc}/snaps/*.bs; true`,
    },
    {
      name: `btrfs → S3 (moto), ${mb(plainBytes)} stream: --compress zstd --encrypt-to (age) vs plain buttersink upload`,
      bytes: plainBytes,
      project: `${ctx.bs} ${s3} ${archive} ${psnap} s3://bench-arch/enc/`,
      baseline: `${ctx.bs} ${s3} ${psnap} s3://bench-arch/plain/`,
      reset: clearS3,
    },
    {
      name: `btrfs → S3 (moto), ${mb(plainBytes)} stream: --compress zstd vs plain buttersink upload`,
      bytes: plainBytes,
      project: `${ctx.bs} ${s3} --compress zstd ${psnap} s3://bench-arch/zst/`,
      baseline: `${ctx.bs} ${s3} ${psnap} s3://bench-arch/plain/`,
      reset: clearS3,
    },
    {
      name: `S3 (moto) → btrfs, ${mb(plainBytes)} stream: encrypted + compressed restore (--age-identity) vs plain restore`,
      bytes: plainBytes,
      project: `${ctx.bs} ${s3} --age-identity ${key} s3://bench-keep/enc/c1 ${pdst}/enc/`,
      baseline: `${ctx.bs} ${s3} s3://bench-keep/plain/c1 ${pdst}/plain/`,
      reset: `for d in ${pdst}/enc/c1 ${pdst}/plain/c1; do [ -e $d ] && btrfs subvolume delete -c $d >/dev/null; done; true`,
    },
  ];
  const notes = async () => {
    const files = Number((await sh(`find ${psnap} -type f | wc -l`)).stdout);
    const enc = await storedBytes(aws, 's3://bench-keep/enc/');
    const plain = await storedBytes(aws, 's3://bench-keep/plain/');
    await sh(`${ctx.bs} ${s3} --compress zstd ${psnap} s3://bench-arch/zst-note/`);
    const zst = await storedBytes(aws, 's3://bench-arch/zst-note/');
    return [
      `Compressible data: a copy of ${TREES.filter((t) => existsSync(t)).join(', ')} (${files} files); send stream ${plainBytes} B from a plain filesystem.`,
      `On compress=zstd: protocol 1 stream ${v1} B, protocol 2 with --compressed-data ${v2} B (${((100 * v2) / v1).toFixed(1)} %).`,
      `Bytes stored on S3 for that snapshot: plain ${plain} B; --compress zstd ${zst} B (${((100 * zst) / plain).toFixed(1)} %); --compress zstd --encrypt-to ${enc} B (${((100 * enc) / plain).toFixed(1)} %), including the .bs sizes file.`,
    ];
  };
  return { scenarios, notes, stop: moto.stop };
}
