/**
 * User and system CPU of every process a benchmark command runs, from the
 * kernel's BSD process accounting (acct(2), format v3): at each process's
 * exit the kernel appends a 64-byte record with its pid, parent pid, command
 * name, user and system CPU and elapsed time. Why this and not the others:
 * GNU time gives one sum for the whole tree; sampling /proc misses what a
 * process spends between the last sample and its exit (and every short-lived
 * process); ptrace (strace -f) and perf slow the traced processes down. The
 * records are exact to the kernel's 10 ms accounting tick and cost nothing
 * while the command runs. They also cover processes that are not children of
 * the command: the sshd session, shell and `buttersink --server` on the
 * remote side of the SSH scenarios are children of the bench's sshd, which is
 * a child of the bench process; processes that live across the run (sshd,
 * moto_server) are measured as the difference of their /proc counters.
 *
 * Parsing and tree building are pure ({@link parseAcct}, {@link processTable});
 * {@link accountedRun} does the I/O. Needs root and CONFIG_BSD_PROCESS_ACCT_V3.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { execa } from 'execa';

/** One exited process, as the kernel recorded it. */
export interface AcctRecord {
  pid: number;
  ppid: number;
  /** Command name (the kernel's 15-character `comm`). */
  comm: string;
  userSeconds: number;
  sysSeconds: number;
  /** From fork to exit. */
  elapsedSeconds: number;
  /** When it was forked, in whole seconds since the epoch. */
  startedAt: number;
  /** Forked but never exec'd (a subshell of a pipeline, say). */
  forkOnly: boolean;
}

/** CPU of the processes that share one path in the process tree. */
export interface ProcessCpu {
  /** Command names from the root down, e.g. `bash › node › btrfs`. */
  path: string;
  /** How many processes had this path. */
  count: number;
  userSeconds: number;
  sysSeconds: number;
  /** Longest elapsed time among them; absent for processes that outlived the run. */
  elapsedSeconds?: number;
}

/** A process that ran before and after the command (its CPU is the difference). */
export interface LongLived {
  pid: number;
  ppid: number;
  comm: string;
  userSeconds: number;
  sysSeconds: number;
}

const RECORD = 64;
/** acct v3 times are in AHZ = 100 ticks per second. */
const AHZ = 100;

/** comp_t: 13-bit mantissa, 3-bit base-8 exponent. */
export function decodeComp(v: number): number {
  return (v & 0x1fff) * 8 ** ((v >> 13) & 7);
}

/** Decodes a v3 accounting file (little-endian, as on x86 and arm64). Other versions throw. */
export function parseAcct(buf: Buffer): AcctRecord[] {
  const out: AcctRecord[] = [];
  for (let o = 0; o + RECORD <= buf.length; o += RECORD) {
    const version = buf.readUInt8(o + 1);
    if ((version & 0x0f) !== 3 || version & 0x80) {
      throw new Error(
        `process accounting record at ${o} is version ${version}, not v3 little-endian`,
      );
    }
    const comm = buf.subarray(o + 48, o + 64);
    const nul = comm.indexOf(0);
    out.push({
      forkOnly: (buf.readUInt8(o) & 0x01) !== 0,
      pid: buf.readUInt32LE(o + 16),
      ppid: buf.readUInt32LE(o + 20),
      startedAt: buf.readUInt32LE(o + 24),
      elapsedSeconds: buf.readFloatLE(o + 28) / AHZ,
      userSeconds: decodeComp(buf.readUInt16LE(o + 32)) / AHZ,
      sysSeconds: decodeComp(buf.readUInt16LE(o + 34)) / AHZ,
      comm: comm.subarray(0, nul < 0 ? 16 : nul).toString('latin1'),
    });
  }
  return out;
}

/**
 * Per-path CPU of the processes below `roots` (pids of long-lived processes
 * or of the command's own shell): every record whose parent chain, through
 * other records and `before`/`after` (long-lived processes with their
 * counters at the start and end), reaches a root. Long-lived processes count
 * with the difference of their counters; a record's pid that is also
 * long-lived is the same process only if it was not in `after`. A process
 * is named by the last program it ran: `bash -c 'node …'` execs node, so
 * node's children show as `node › btrfs` (children that bash forked before it
 * exec'd the last command of a list show under that command's name too).
 * Records of processes started before second `since` (the run's start) are
 * left out.
 */
export function processTable(
  records: AcctRecord[],
  roots: number[],
  before: LongLived[],
  after: LongLived[],
  since = 0,
): ProcessCpu[] {
  const pathOf = pathResolver(records, roots, after);
  const live = new Set(after.map((p) => p.pid));
  const start = new Map(before.map((p) => [p.pid, p]));
  const rows = new Map<string, ProcessCpu>();
  const add = (path: string, user: number, sys: number, elapsed?: number) => {
    const row = rows.get(path) ?? { path, count: 0, userSeconds: 0, sysSeconds: 0 };
    row.count++;
    row.userSeconds += user;
    row.sysSeconds += sys;
    if (elapsed !== undefined) row.elapsedSeconds = Math.max(row.elapsedSeconds ?? 0, elapsed);
    rows.set(path, row);
  };
  for (const r of records) {
    const path = live.has(r.pid) || r.startedAt < since ? undefined : pathOf(r.pid, r);
    if (path) add(path, r.userSeconds, r.sysSeconds, r.elapsedSeconds);
  }
  for (const p of after) {
    const s = start.get(p.pid);
    const path = pathOf(p.pid);
    const user = p.userSeconds - (s?.userSeconds ?? 0);
    const sys = p.sysSeconds - (s?.sysSeconds ?? 0);
    // Idle long-lived processes (an sshd listener between connections) add nothing.
    if (path && s && user + sys > 0) add(path, user, sys);
  }
  return [...rows.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * A function from pid (or from one record) to its comm path below `roots`
 * (`bash › node › btrfs`), undefined for a process below none of them; see
 * {@link processTable}. Pids wrap around (32768 by default) and other
 * processes on the machine exit during the run too, so a parent is a live
 * process with the child's parent pid, or a record with it that started no
 * later than the child and had not exited (to the second) before the child
 * started.
 */
export function pathResolver(
  records: AcctRecord[],
  roots: number[],
  after: LongLived[],
): (pid: number, record?: AcctRecord) => string | undefined {
  const byPid = new Map<number, AcctRecord[]>();
  for (const r of records) byPid.set(r.pid, [...(byPid.get(r.pid) ?? []), r]);
  const live = new Map(after.map((p) => [p.pid, p]));
  const rootSet = new Set(roots);
  const parentOf = (child: { ppid: number; startedAt?: number }) => {
    const l = live.get(child.ppid);
    if (l) return l;
    const at = child.startedAt ?? Infinity;
    return (byPid.get(child.ppid) ?? []).find(
      (r) => r.startedAt <= at && at <= r.startedAt + Math.ceil(r.elapsedSeconds) + 1,
    );
  };
  const chain = (n: LongLived | AcctRecord, depth: number): string[] | undefined => {
    if (rootSet.has(n.pid)) return [n.comm];
    const up = depth > 64 ? undefined : parentOf(n);
    const above = up && chain(up, depth + 1);
    return above && [...above, n.comm];
  };
  return (pid, record) => {
    const n = record ?? live.get(pid) ?? byPid.get(pid)?.at(-1);
    return n && chain(n, 0)?.join(' › ');
  };
}

/** Parses /proc/<pid>/stat text: the comm may hold spaces and parentheses. */
export function parseProcStat(text: string): LongLived {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    ppid: Number(f[1]),
    userSeconds: Number(f[11]) / AHZ,
    sysSeconds: Number(f[12]) / AHZ,
  };
}

/** Every process on the machine with its counters (processes that vanish while read are skipped). */
async function allProcesses(): Promise<LongLived[]> {
  const out: LongLived[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      out.push(parseProcStat(await readFile(`/proc/${d}/stat`, 'utf8')));
    } catch {
      // exited between readdir and read
    }
  }
  return out;
}

/** The processes below `pid` (not pid itself). */
export function descendants(all: LongLived[], pid: number): LongLived[] {
  const kids = new Map<number, LongLived[]>();
  for (const p of all) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p]);
  const out: LongLived[] = [];
  const walk = (p: number) => {
    for (const k of kids.get(p) ?? []) {
      out.push(k);
      walk(k.pid);
    }
  };
  walk(pid);
  return out;
}

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Switches process accounting to `file` (which must exist) or off (`null`). */
async function setAccounting(file: string | null): Promise<void> {
  const arg = file === null ? 'None' : 'sys.argv[1].encode()';
  const py = `import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nif libc.acct(${arg}) != 0:\n    e = ctypes.get_errno(); sys.exit('acct: ' + os.strerror(e))`;
  await execa(PYTHON, ['-c', py, ...(file === null ? [] : [file])]);
}

/** What {@link accountedRun} measured. */
export interface AccountedRun {
  seconds: number;
  exitCode: number;
  processes: ProcessCpu[];
  /** The path of each process that ran, by pid (to name the profile of a pid). */
  pathOf: (pid: number) => string | undefined;
}

/**
 * Waits until every process below the bench process that was not there in
 * `known` has exited (up to 10 s), then returns the known ones still alive.
 */
async function settle(known: Set<number>): Promise<LongLived[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = descendants(await allProcesses(), process.pid);
    if (now.every((p) => known.has(p.pid)) || Date.now() > deadline) {
      return now.filter((p) => known.has(p.pid));
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs `command` under bash with process accounting on, and returns its wall
 * time and the CPU of every process below it and below the bench process's
 * other children (sshd, moto_server: each the root of its own paths). Waits
 * for processes the command started elsewhere, such as the sshd session of an
 * SSH transfer, to exit before reading the records. `acctFile` is overwritten.
 */
export async function accountedRun(command: string, acctFile: string): Promise<AccountedRun> {
  await writeFile(acctFile, '');
  const before = descendants(await allProcesses(), process.pid);
  await setAccounting(acctFile);
  try {
    const since = Math.floor(Date.now() / 1000) - 1;
    const t0 = process.hrtime.bigint();
    const child = execa('bash', ['-o', 'pipefail', '-c', command], { reject: false });
    const rootPid = child.pid ?? -1;
    const exitCode = (await child).exitCode ?? -1;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = await settle(new Set(before.map((p) => p.pid)));
    await setAccounting(null);
    const records = parseAcct(await readFile(acctFile));
    const roots = [rootPid, ...after.map((p) => p.pid)];
    return {
      seconds,
      exitCode,
      processes: processTable(records, roots, before, after, since),
      pathOf: pathResolver(records, roots, after),
    };
  } catch (err) {
    await setAccounting(null).catch(() => undefined);
    throw err;
  }
}
