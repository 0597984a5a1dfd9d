/**
 * Benchmark: checksumdir against the plain baselines on the same tree, runs
 * alternated, medians reported:
 * - `find . -type f -print0 | xargs -0 -P2 sha256sum` (as given, and with
 *   `-n 100` so -P2 really runs two processes),
 * - `find . -type f -exec sha256sum {} \;` (one process per file, the original script).
 * Our run happens in a child process so its peak RSS is its own; its time is
 * measured inside the child (Node start-up excluded).
 *
 * Standalone: `node --import tsx bench/checksumdir.ts [dir]`; without a dir a
 * data set (5,000 small files + 880 MB of larger ones) is made in /dev/shm.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Medians (ms) and ratios of one benchmark. */
export interface BenchChecksumdirResult {
  dir: string;
  runs: number;
  medianMs: Record<'ours' | 'xargsP2' | 'xargsP2n100' | 'perFile', number>;
  /** Baseline time / our time: > 1 means we are faster. */
  speedup: Record<'xargsP2' | 'xargsP2n100' | 'perFile', number>;
  /** Highest peak RSS of our child process over the runs, bytes. */
  peakRssBytes: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timeShell(script: string, cwd: string): Promise<number> {
  const start = performance.now();
  await run('sh', ['-c', script], { cwd, maxBuffer: 1 << 30 });
  return performance.now() - start;
}

async function timeOurs(dir: string): Promise<{ ms: number; maxRss: number }> {
  const out = await mkdtemp(join(tmpdir(), 'bench-checksumdir-out-'));
  try {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', dir, out],
      { cwd: fileURLToPath(new URL('..', import.meta.url)) },
    );
    return JSON.parse(stdout) as { ms: number; maxRss: number };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * Runs the benchmark on `dir` with `runs` alternating rounds (default 5).
 * Reads `dir` only; the outputs go to a temporary directory.
 */
export async function benchChecksumdir(dir: string, runs = 5): Promise<BenchChecksumdirResult> {
  const times = {
    ours: [] as number[],
    xargsP2: [] as number[],
    xargsP2n100: [] as number[],
    perFile: [] as number[],
  };
  let peakRssBytes = 0;
  for (let i = 0; i < runs; i++) {
    const ours = await timeOurs(dir);
    times.ours.push(ours.ms);
    peakRssBytes = Math.max(peakRssBytes, ours.maxRss * 1024);
    times.xargsP2.push(
      await timeShell('find . -type f -print0 | xargs -0 -P2 sha256sum >/dev/null', dir),
    );
    times.xargsP2n100.push(
      await timeShell('find . -type f -print0 | xargs -0 -P2 -n100 sha256sum >/dev/null', dir),
    );
    times.perFile.push(await timeShell('find . -type f -exec sha256sum {} \\; >/dev/null', dir));
  }
  const medianMs = {
    ours: median(times.ours),
    xargsP2: median(times.xargsP2),
    xargsP2n100: median(times.xargsP2n100),
    perFile: median(times.perFile),
  };
  return {
    dir,
    runs,
    medianMs,
    speedup: {
      xargsP2: medianMs.xargsP2 / medianMs.ours,
      xargsP2n100: medianMs.xargsP2n100 / medianMs.ours,
      perFile: medianMs.perFile / medianMs.ours,
    },
    peakRssBytes,
  };
}

/**
 * Fills `dir` with the benchmark data set: 5,000 files of 0–32 KiB in 50
 * directories, 60 files of 10 MiB and 2 of 140 MiB (≈ 950 MB in all).
 */
export async function makeChecksumdirDataset(dir: string): Promise<void> {
  const block = randomBytes(1 << 20);
  const data = (size: number, seed: number) => {
    const buf = Buffer.allocUnsafe(size);
    for (let off = 0; off < size; off += block.length - 7) {
      block.copy(buf, off, seed % 7, Math.min(block.length, (seed % 7) + size - off));
      if (off + 8 <= size) buf.writeUInt32LE(seed + off, off);
    }
    return buf;
  };
  for (let d = 0; d < 50; d++) {
    await mkdir(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) {
      const n = d * 100 + f;
      await writeFile(join(dir, `d${d}`, `f${f}`), data((n * 7919) % 32768, n));
    }
  }
  await mkdir(join(dir, 'big'), { recursive: true });
  for (let i = 0; i < 60; i++) await writeFile(join(dir, 'big', `m${i}`), data(10 << 20, i));
  for (let i = 0; i < 2; i++) await writeFile(join(dir, 'big', `h${i}`), data(140 << 20, 1000 + i));
}

async function child(dir: string, out: string): Promise<void> {
  const { runChecksumdir } = await import('../src/checksumdir/run-checksumdir.js');
  const start = performance.now();
  await runChecksumdir({ dirs: [dir], outDir: out });
  const ms = performance.now() - start;
  process.stdout.write(JSON.stringify({ ms, maxRss: process.resourceUsage().maxRSS }));
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') {
    await child(argv[1]!, argv[2]!);
    return;
  }
  let dir = argv[0];
  let made: string | undefined;
  if (!dir) {
    made = await mkdtemp('/dev/shm/bench-checksumdir-');
    dir = join(made, 'tree');
    await makeChecksumdirDataset(dir);
  }
  try {
    const result = await benchChecksumdir(dir, Number(process.env.BENCH_RUNS ?? 5));
    const { stdout } = await run('sh', ['-c', 'find . -type f | wc -l; du -sb . | cut -f1'], {
      cwd: dir,
    });
    const [files, bytes] = stdout.trim().split('\n');
    console.log(`tree: ${files} files, ${(Number(bytes) / 1e6).toFixed(0)} MB`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    if (made) await rm(made, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
