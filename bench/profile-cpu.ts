/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`, `.cpuprofile` JSON): self
 * time per function and per module (node internals, ssh2, aws-sdk, our code,
 * other packages, V8's own categories). Pure apart from {@link readCpuProfiles}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { dirname, join, relative } from 'node:path';

/** The parts of a `.cpuprofile` that are read. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
    hitCount?: number;
  }[];
  /** Microseconds. */
  startTime: number;
  endTime: number;
  /** Node id of each sample; absent in some writers, then hitCount is used. */
  samples?: number[];
}

/** One function's self time. */
export interface FunctionCost {
  /** `name file:line` (line 1-based; file relative to the repository or node_modules). */
  fn: string;
  module: string;
  selfMs: number;
  /** Share of all samples, idle included, in %. */
  pct: number;
}

/** Self time of one module. */
export interface ModuleCost {
  module: string;
  selfMs: number;
  pct: number;
}

/** What {@link summarizeCpuProfile} makes of one process's profile. */
export interface CpuSummary {
  /** Profiled time (from the profile's start to its end). */
  totalMs: number;
  samples: number;
  /** Time the main thread waited for events, in %. */
  idlePct: number;
  modules: ModuleCost[];
  /** The functions with most self time, idle excluded, most first. */
  top: FunctionCost[];
}

/** V8's pseudo-functions, and what they stand for. */
const SPECIAL: Record<string, string> = {
  '(idle)': 'idle (waiting for I/O)',
  '(program)': 'V8/native, not JavaScript (program)',
  '(garbage collector)': 'garbage collector',
  '(root)': 'V8/native, not JavaScript (program)',
};

/** Packages folded into one module name. */
const PACKAGE_GROUPS: [RegExp, string][] = [
  [/^@(aws-sdk|smithy|aws-crypto)\//, 'aws-sdk'],
  [/^ssh2$/, 'ssh2'],
];

/**
 * The module a call frame belongs to and its file for display: `node
 * internals` (`node:` URLs), a package name (below node_modules, with the
 * AWS SDK's packages as `aws-sdk`), `buttersink` (the repository's own
 * files), `V8 builtins` (no URL), or a V8 category.
 */
export function classify(
  frame: { functionName: string; url: string },
  repo: string,
): { module: string; file: string } {
  const special = SPECIAL[frame.functionName];
  if (special && frame.url === '') return { module: special, file: '' };
  const url = frame.url;
  if (url === '') return { module: 'V8 builtins', file: '' };
  if (url.startsWith('node:')) return { module: 'node internals', file: url.slice(5) };
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length);
    const parts = rest.split('/');
    const pkg = parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
    const group = PACKAGE_GROUPS.find(([re]) => re.test(pkg));
    return { module: group ? group[1] : pkg, file: rest };
  }
  const root = repo.endsWith('/') ? repo : `${repo}/`;
  if (path.startsWith(root)) return { module: 'buttersink', file: path.slice(root.length) };
  return { module: 'other', file: path };
}

/**
 * Maps a position in a file (repository-relative, 0-based line and column)
 * to its source, e.g. `dist/sync.js` to `src/sync.ts`; undefined to keep it.
 */
export type LocationMapper = (
  file: string,
  line: number,
  column: number,
) => { file: string; line: number } | undefined;

/**
 * Self time per function and module of `profile`. `repo` is the repository
 * root, whose files count as `buttersink`; `top` bounds the function list;
 * `map` turns built files' positions into their sources'.
 */
export function summarizeCpuProfile(
  profile: CpuProfile,
  repo: string,
  top = 10,
  map: LocationMapper = () => undefined,
): CpuSummary {
  const counts = new Map<number, number>();
  if (profile.samples && profile.samples.length > 0) {
    for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  } else {
    for (const n of profile.nodes) counts.set(n.id, n.hitCount ?? 0);
  }
  const samples = [...counts.values()].reduce((a, b) => a + b, 0);
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const msPer = samples > 0 ? totalMs / samples : 0;
  const fns = new Map<string, { module: string; n: number }>();
  const mods = new Map<string, number>();
  let idle = 0;
  for (const node of profile.nodes) {
    const n = counts.get(node.id) ?? 0;
    if (n === 0) continue;
    const f = node.callFrame;
    const { module, file } = classify(f, repo);
    if (f.functionName === '(idle)' && f.url === '') idle += n;
    mods.set(module, (mods.get(module) ?? 0) + n);
    const name = f.functionName || '(anonymous)';
    const to = module === 'buttersink' ? map(file, f.lineNumber, f.columnNumber ?? 0) : undefined;
    const key = !file
      ? name
      : to
        ? `${name} ${to.file}:${to.line + 1}`
        : `${name} ${file}:${f.lineNumber + 1}`;
    const cur = fns.get(key) ?? { module, n: 0 };
    cur.n += n;
    fns.set(key, cur);
  }
  const pct = (n: number) => (samples > 0 ? (100 * n) / samples : 0);
  return {
    totalMs,
    samples,
    idlePct: pct(idle),
    modules: [...mods]
      .map(([module, n]) => ({ module, selfMs: n * msPer, pct: pct(n) }))
      .sort((a, b) => b.selfMs - a.selfMs),
    top: [...fns]
      .filter(([, v]) => v.module !== SPECIAL['(idle)'])
      .map(([fn, v]) => ({ fn, module: v.module, selfMs: v.n * msPer, pct: pct(v.n) }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top),
  };
}

/** The pid in a `--cpu-prof` file name (`CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile`). */
export function pidOfProfile(file: string): number | undefined {
  const m = /^CPU\.\d+\.\d+\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file);
  return m ? Number(m[1]) : undefined;
}

/** Every `.cpuprofile` in `dir`, parsed, with the pid from its name. */
export async function readCpuProfiles(
  dir: string,
): Promise<{ file: string; pid?: number; profile: CpuProfile }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  return Promise.all(
    files.map(async (file) => {
      const pid = pidOfProfile(file);
      const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
      return pid === undefined ? { file, profile } : { file, pid, profile };
    }),
  );
}

/**
 * A {@link LocationMapper} from the source maps the build writes next to each
 * file (`dist/x.js.map`); positions without a map or mapping stay as they are.
 */
export function sourceMapper(repo: string): LocationMapper {
  const maps = new Map<string, SourceMap | undefined>();
  const load = (file: string) => {
    if (!maps.has(file)) {
      const path = join(repo, `${file}.map`);
      maps.set(
        file,
        existsSync(path)
          ? new SourceMap(JSON.parse(readFileSync(path, 'utf8')) as never)
          : undefined,
      );
    }
    return maps.get(file);
  };
  return (file, line, column) => {
    const entry = load(file)?.findEntry(line, column);
    if (!entry || !('originalSource' in entry) || !entry.originalSource) return undefined;
    const src = entry.originalSource.replace(/^file:\/\//, '');
    const abs = src.startsWith('/') ? src : join(repo, dirname(file), src);
    return { file: relative(repo, abs), line: entry.originalLine };
  };
}
