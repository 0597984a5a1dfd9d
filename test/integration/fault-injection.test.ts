/**
 * Fault injection (issue 10 item 6), on real loop-mounted btrfs, moto_server and
 * (when present) OpenSSH sshd. For each transfer kind — btrfs → btrfs, btrfs → S3,
 * S3 → btrfs, btrfs → ssh, ssh → btrfs — faults are injected at many points:
 * SIGKILL / SIGTERM of the CLI at deterministic triggers (a `.part` appears, the
 * `.part` turns read-only, a snapshot appears under its final name, an UploadPart /
 * CompleteMultipartUpload / PutObject / GET reaches the proxy, N bytes passed), and
 * S3 faults through test/fixtures/fault-proxy.ts (5xx, connection resets, truncated
 * and byte-flipped GET bodies) plus a stored diff whose stream-header version byte
 * was changed. After each fault the invariant is checked:
 *
 * - held: the destination holds no snapshot under its final name that differs from
 *   its source (btrfs: read-only, received UUID and treeDigest; S3: the diff key
 *   names the source's UUIDs and the stored bytes verify against the recorded
 *   SHA-256) — a `.part` is fine;
 * - converged: a plain rerun (no fault) succeeds and the destination then holds
 *   every source snapshot, identical (S3: also restored to btrfs and compared).
 *
 * Ends with the tally "fault injection: N faults tried, N held, 0 lost".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { access, constants, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { deleteSubvolume } from '../../src/btrfs/subvolume.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { scrubStore } from '../../src/stores/s3/scrub.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { REPO } from '../fixtures/cli.js';
import { startFaultProxy } from '../fixtures/fault-proxy.js';
import type { Fault, FaultProxy } from '../fixtures/fault-proxy.js';
import { MOTO_ENV, isUploadPart, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto, ProxiedRequest } from '../fixtures/moto.js';
import { integrationPrereqs, missingPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true, moto: true });
const haveSshd = missingPrereqs({ sshd: true }).length === 0;
const MiB = 1024 * 1024;
const BUCKET = 'bkt-faults';
const NAMES = ['s0', 's1', 's2'] as const;

// ---------------------------------------------------------------- the tally

const tally = { tried: 0, held: 0, lost: 0 };
const lostCases: string[] = [];

// ---------------------------------------------------------------- the CLI

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: string | null; out: string }>;
}

/** Starts the CLI in its own process group (so orphaned btrfs children can be waited for). */
function startRun(args: readonly string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin/buttersink.ts', ...args], {
    cwd: REPO,
    env: { ...process.env, ...MOTO_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; out: string }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, out })),
  );
  return { child, done };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until every process of the run's group is gone (orphans die on broken pipes); then kills stragglers. */
async function reapGroup(run: Run): Promise<void> {
  const pgid = run.child.pid!;
  for (let i = 0; i < 500 && groupAlive(pgid); i++) await sleep(10);
  if (groupAlive(pgid)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
    for (let i = 0; i < 200 && groupAlive(pgid); i++) await sleep(10);
  }
}

/** Polls `pred` every few ms until it holds or the run ends; true when it held. */
async function until(
  pred: () => boolean | Promise<boolean>,
  run?: Run,
  ms = 60_000,
  every = 2,
): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    if (run && (run.child.exitCode !== null || run.child.signalCode !== null)) return pred();
    await sleep(every);
  }
  return false;
}

/** Whether a process of the run's group is the size probe (`btrfs send … --no-data`). */
function probeRunning(run: Run): boolean {
  const pgid = run.child.pid!;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // After "(comm) ": state ppid pgrp …
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.includes('send') && argv.includes('--no-data')) return true;
    } catch {
      // exited meanwhile
    }
  }
  return false;
}

async function isReadOnly(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EROFS';
  }
}

// ---------------------------------------------------------------- fixtures

describe('fault injection (loop btrfs, moto_server, sshd)', { skip: prereqs.skip }, () => {
  let moto: Moto;
  let client: S3Client;
  let restoreEnv: () => void;
  let src: BtrfsFs;
  let dst: BtrfsFs;
  let snaps: string;
  let sshd: Sshd | undefined;
  const uuids = new Map<string, string>();
  const digests = new Map<string, string>();
  let caseNo = 0;

  const btrfsStore = (dir: string) => new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
  const s3Store = (prefix: string) =>
    new S3Store(parseLocation(`s3://${BUCKET}/${prefix}/`) as S3Location, {
      endpoint: moto.endpoint,
      partSize: 5 * MiB,
      jobs: 2,
    });
  const s3Args = (endpoint: string) => [
    '--endpoint-url',
    endpoint,
    '--part-size',
    '5',
    '--jobs',
    '2',
  ];

  before(async () => {
    restoreEnv = useMotoEnv();
    moto = await startMoto();
    client = createS3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    [src, dst] = await Promise.all([
      createBtrfs({ size: 512 * MiB }),
      createBtrfs({ size: 1024 * MiB }),
    ]);
    const vol = await subvolume(join(src.mnt, 'vol'));
    snaps = join(src.mnt, 'snaps');
    await mkdir(snaps);
    // s0: a full send of ~7 MiB (two 5 MiB parts); s1, s2: small incrementals.
    await makeTree(vol, 0, { bigMiB: 7 });
    for (let i = 0; i < NAMES.length; i++) {
      if (i > 0) await makeTree(vol, i);
      const p = await snapshot(vol, join(snaps, NAMES[i]!));
      uuids.set(NAMES[i]!, (await subvolumeShow(p)).uuid!);
      digests.set(NAMES[i]!, await treeDigest(p));
    }
    // A good S3 copy for the S3 → btrfs faults, and one to damage at rest.
    await sync(btrfsStore(snaps), s3Store('good'));
    await sync(btrfsStore(snaps), s3Store('damaged'));
    if (haveSshd) sshd = await startSshd();
  });

  after(async () => {
    const line = `fault injection: ${tally.tried} faults tried, ${tally.held} held, ${tally.lost} lost`;
    console.log(line);
    if (lostCases.length) console.log(`lost: ${lostCases.join('; ')}`);
    await sshd?.stop();
    await Promise.all([dst?.cleanup(), src?.cleanup()]);
    client?.destroy();
    await moto?.stop();
    restoreEnv?.();
  });

  // ---------------------------------------------------------------- checks

  /** Problems with final-named snapshots in a btrfs directory ('' entries: none). */
  async function btrfsProblems(dir: string, mustHaveAll: boolean): Promise<string[]> {
    const problems: string[] = [];
    const entries = existsSync(dir) ? await readdir(dir) : [];
    for (const e of entries) {
      if (e.endsWith('.part') || e.startsWith('.')) continue;
      if (!uuids.has(e)) {
        problems.push(`unexpected entry ${e}`);
        continue;
      }
      const show = await subvolumeShow(join(dir, e));
      if (show.readOnly !== true) problems.push(`${e} not read-only`);
      if (show.receivedUuid !== uuids.get(e))
        problems.push(`${e} received UUID ${show.receivedUuid}`);
      if ((await treeDigest(join(dir, e))) !== digests.get(e))
        problems.push(`${e} content differs`);
    }
    if (mustHaveAll) {
      for (const n of NAMES) if (!entries.includes(n)) problems.push(`${n} missing`);
    }
    return problems;
  }

  /** Problems with the diffs stored under an S3 prefix. */
  async function s3Problems(prefix: string, mustHaveAll: boolean): Promise<string[]> {
    const problems: string[] = [];
    const store = s3Store(prefix);
    const report = await scrubStore(store);
    for (const b of report.bad) problems.push(`bad diff ${b.uri}: ${b.error}`);
    const diffs = await store.storedDiffs();
    const have = new Set<string>();
    for (const d of diffs) {
      // Keys: <prefix>/<name>/<uuid>_<from uuid|None>
      const m = /\/([^/]+)\/([0-9a-f-]{36})_([0-9a-f-]{36}|None)$/.exec(d.key);
      if (!m) {
        problems.push(`unparsable diff key ${d.key}`);
        continue;
      }
      const [, name, uuid] = m;
      if (uuids.get(name!) !== uuid) problems.push(`${d.key}: UUID is not ${name}'s`);
      have.add(name!);
    }
    if (mustHaveAll) {
      for (const n of NAMES) if (!have.has(n)) problems.push(`no diff of ${n}`);
      if (problems.length === 0) {
        // The strongest check: restore the prefix and compare.
        const restore = join(dst.mnt, `verify-${prefix.replace(/\W/g, '_')}`);
        await mkdir(restore);
        try {
          await sync(s3Store(prefix), btrfsStore(restore));
          problems.push(...(await btrfsProblems(restore, true)).map((p) => `restored: ${p}`));
        } finally {
          await removeDir(restore);
        }
      }
    }
    return problems;
  }

  async function removeDir(dir: string): Promise<void> {
    if (!existsSync(dir)) return;
    const subs = (await readdir(dir)).filter((e) => !e.startsWith('.'));
    for (const e of subs) {
      await deleteSubvolume(join(dir, e)).catch(() => undefined);
    }
  }

  interface Kind {
    /** The destination of case `id` (a fresh one per case). */
    dest(id: string): Promise<{
      uri: string;
      problems: (all: boolean) => Promise<string[]>;
      dir?: string;
      cleanup(): Promise<void>;
    }>;
    /** The source URI. */
    source: () => string;
    /** Extra CLI arguments (endpoint etc.) for the faulted run, given the proxy. */
    faultArgs: (proxy?: FaultProxy) => string[];
    /** Extra CLI arguments for the plain rerun through the CLI (ssh kinds). */
    plainArgs: () => string[];
    /** The plain rerun in this process (library `sync`, same lock and stores as the CLI); else the CLI is run. */
    rerun?: (dest: { uri: string; dir?: string }) => Promise<void>;
    /** Whether the faulted run goes through a fault proxy in front of moto. */
    s3?: boolean;
    env?: () => Record<string, string>;
  }

  /**
   * One fault: runs the CLI with `proxy` faults, `trigger` (resolves true when the
   * kill point was reached, then `signal` is sent), checks the invariant, reruns.
   */
  async function faultCase(
    t: { diagnostic(s: string): void },
    kind: Kind,
    what: string,
    opts: {
      fault?: (r: ProxiedRequest, proxy: FaultProxy) => Fault | undefined;
      trigger?: (ctx: { dir?: string; proxy?: FaultProxy; run: Run }) => Promise<boolean>;
      signal?: NodeJS.Signals;
      /**
       * A fault done to the peer when the trigger fires, instead of a signal to the
       * run (a cut or a stalled network): the run must then end by itself. Its
       * result runs after the run ended (e.g. SIGCONT of what it stopped).
       */
      peerFault?: () => Promise<() => void>;
      /** Asserted on the faulted run's outcome (e.g. "must be refused"). */
      expect?: (
        r: { code: number | null; signal: string | null; out: string },
        problems: string[],
        dir?: string,
      ) => string[];
      /** Run before the rerun (e.g. repairing damage at rest). */
      beforeRerun?: () => Promise<void>;
      /** Source URI override for this case. */
      source?: string;
      /** Run the faulted CLI without `-e`, so it measures diffs with the size probe. */
      measure?: boolean;
    },
  ): Promise<void> {
    const id = `c${++caseNo}`;
    const d = await kind.dest(id);
    const proxy = opts.fault || kind.s3 ? await startFaultProxy(moto.endpoint) : undefined;
    if (proxy && opts.fault) proxy.fault = (r) => opts.fault!(r, proxy);
    tally.tried++;
    let lost: string[] = [];
    try {
      const run = startRun(
        [
          '-q',
          ...(opts.measure ? [] : ['-e']),
          ...kind.faultArgs(proxy),
          opts.source ?? kind.source(),
          d.uri,
        ],
        kind.env?.() ?? {},
      );
      let reached = true;
      let afterPeerFault: (() => void) | undefined;
      if (opts.trigger) {
        reached = await opts.trigger({
          ...(d.dir ? { dir: d.dir } : {}),
          ...(proxy ? { proxy } : {}),
          run,
        });
        if (run.child.exitCode !== null || run.child.signalCode !== null) reached = false;
        else if (opts.peerFault) afterPeerFault = await opts.peerFault();
        else run.child.kill(opts.signal ?? 'SIGKILL');
      }
      const r = await run.done;
      afterPeerFault?.();
      await reapGroup(run);
      await proxy?.close();
      const problems = await d.problems(false);
      const extra = opts.expect?.(r, problems, d.dir) ?? [];
      const fired = opts.peerFault ? 'peer fault' : (opts.signal ?? 'SIGKILL');
      t.diagnostic(
        `${id} ${what}: ${opts.trigger ? (reached ? `${fired} at the trigger` : 'run ended before the trigger') : ''}` +
          ` exit=${r.code ?? r.signal}` +
          (proxy ? ` injected=${proxy.injected.length}` : '') +
          (problems.length ? ` PROBLEMS: ${problems.join('; ')}` : ' held'),
      );
      if (r.code !== 0 && r.code !== null && !/SIG/.test(String(r.signal))) {
        const last = r.out.trim().split('\n').slice(-1)[0];
        if (last) t.diagnostic(`   ${id} said: ${last}`);
      }
      lost = [...problems, ...extra];

      await opts.beforeRerun?.();
      let rerunError: string | undefined;
      if (kind.rerun) {
        await kind.rerun(d).catch((err: Error) => (rerunError = err.message));
      } else {
        const rerun = startRun(
          ['-q', '-e', ...kind.plainArgs(), opts.source ?? kind.source(), d.uri],
          kind.env?.() ?? {},
        );
        const rr = await rerun.done;
        await reapGroup(rerun);
        if (rr.code !== 0) rerunError = `exit ${rr.code}: ${rr.out.trim()}`;
      }
      if (rerunError !== undefined) lost.push(`rerun failed: ${rerunError}`);
      else lost.push(...(await d.problems(true)).map((p) => `after rerun: ${p}`));
    } finally {
      await proxy?.close();
      await d.cleanup();
    }
    if (lost.length) {
      tally.lost++;
      lostCases.push(`${id} ${what}: ${lost.join('; ')}`);
      t.diagnostic(`   ${id} LOST: ${lost.join('; ')}`);
    } else tally.held++;
    assert.deepEqual(lost, [], `${what}`);
  }

  // ---------------------------------------------------------------- kinds

  const toBtrfs = (
    extraFault: (p?: FaultProxy) => string[],
    plain: () => string[],
    source: () => string,
    sourceStore?: () => BtrfsStore | S3Store,
    s3 = false,
  ): Kind => ({
    source,
    faultArgs: extraFault,
    plainArgs: plain,
    s3,
    ...(sourceStore
      ? {
          rerun: async (d: { dir?: string }) =>
            void (await sync(sourceStore(), btrfsStore(d.dir!))),
        }
      : {}),
    async dest(id) {
      const dir = join(dst.mnt, id);
      await mkdir(dir);
      return {
        uri: `${dir}/`,
        dir,
        problems: (all) => btrfsProblems(dir, all),
        cleanup: () => removeDir(dir),
      };
    },
  });

  const partOf = (dir: string | undefined, name: string) => join(dir!, `${name}.part`);
  const isDiffGet = (r: ProxiedRequest, prefix: string, name: string) =>
    r.method === 'GET' && r.path.startsWith(`/${BUCKET}/${prefix}/${name}/`);

  /** Removes the sizes recorded beside the source snapshots, so a measuring run probes again. */
  const forgetSizes = async () => {
    for (const n of NAMES) await rm(join(snaps, `${n}.bs`), { force: true });
  };
  const bsWritten = () => NAMES.some((n) => existsSync(join(snaps, `${n}.bs`)));
  /**
   * Fires while the run measures (polled every 10 ms): a `btrfs send --no-data`
   * child is in its group, or — the probe being too quick to be seen — the first
   * `.bs` was written (the next probe is under way). With `afterBs`, only the latter.
   */
  const atProbe =
    (how: { by?: string }, afterBs = false) =>
    ({ run }: { run: Run }) =>
      until(
        () => {
          if (!afterBs && probeRunning(run)) how.by = 'probe child';
          else if (bsWritten()) how.by = '.bs written';
          return how.by !== undefined;
        },
        run,
        30_000,
        10,
      );
  /** The kill hit the planning: the trigger fired, and (btrfs) nothing reached the destination. */
  const killedWhilePlanning =
    (how: { by?: string }) =>
    (_r: unknown, _p: string[], dir?: string): string[] => [
      ...(how.by ? [] : ['the run ended before the size probe was caught']),
      ...(dir && readdirSync(dir).some((e) => !e.startsWith('.'))
        ? [`a transfer started before the kill: ${readdirSync(dir).join(', ')}`]
        : []),
    ];
  const planningCase = async (
    t: { diagnostic(s: string): void },
    kind: Kind,
    what: string,
    signal: NodeJS.Signals,
    afterBs = false,
  ) => {
    await forgetSizes();
    const how: { by?: string } = {};
    try {
      await faultCase(t, kind, what, {
        signal,
        measure: true,
        trigger: atProbe(how, afterBs),
        expect: killedWhilePlanning(how),
      });
    } finally {
      t.diagnostic(`   trigger: ${how.by ?? 'none'}`);
    }
  };

  // ---------------------------------------------------------------- btrfs → btrfs

  describe('btrfs → btrfs', () => {
    const kind = () =>
      toBtrfs(
        () => [],
        () => [],
        () => `${snaps}/`,
        () => btrfsStore(snaps),
      );
    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      it(`${signal} when s0.part appears (full receive)`, async (t) => {
        await faultCase(t, kind(), `btrfs→btrfs ${signal} at s0.part`, {
          signal,
          trigger: ({ dir, run }) => until(() => existsSync(partOf(dir, 's0')), run),
        });
      });
    }
    it('SIGKILL when s1.part appears (incremental receive)', async (t) => {
      await faultCase(t, kind(), 'btrfs→btrfs SIGKILL at s1.part', {
        trigger: ({ dir, run }) => until(() => existsSync(partOf(dir, 's1')), run),
      });
    });
    it('SIGTERM when s2.part appears', async (t) => {
      await faultCase(t, kind(), 'btrfs→btrfs SIGTERM at s2.part', {
        signal: 'SIGTERM',
        trigger: ({ dir, run }) => until(() => existsSync(partOf(dir, 's2')), run),
      });
    });
    it('SIGKILL when the receiver is done (s0.part read-only, before the rename)', async (t) => {
      await faultCase(t, kind(), 'btrfs→btrfs SIGKILL at s0.part read-only', {
        trigger: ({ dir, run }) =>
          until(
            async () => existsSync(partOf(dir, 's0')) && (await isReadOnly(partOf(dir, 's0'))),
            run,
          ),
      });
    });
    it('SIGKILL right after the rename of s0 (commit)', async (t) => {
      await faultCase(t, kind(), 'btrfs→btrfs SIGKILL at s0 final', {
        trigger: ({ dir, run }) => until(() => existsSync(join(dir!, 's0')), run),
      });
    });
    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      it(`${signal} while planning (the --no-data size probe runs)`, async (t) => {
        await planningCase(t, kind(), `btrfs→btrfs ${signal} at size probe`, signal);
      });
    }
  });

  // ---------------------------------------------------------------- btrfs → S3

  describe('btrfs → S3', () => {
    const kind = (): Kind => ({
      source: () => `${snaps}/`,
      faultArgs: (p) => s3Args(p!.endpoint),
      plainArgs: () => s3Args(moto.endpoint),
      s3: true,
      rerun: async (d) => {
        await sync(btrfsStore(snaps), s3Store(/s3:\/\/[^/]+\/([^/]+)\//.exec(d.uri)![1]!));
      },
      async dest(id) {
        return {
          uri: `s3://${BUCKET}/${id}/`,
          problems: (all) => s3Problems(id, all),
          cleanup: async () => undefined,
        };
      },
    });
    const isComplete = (r: ProxiedRequest) => r.method === 'POST' && r.query.has('uploadId');
    const isPut = (r: ProxiedRequest, name: string) =>
      r.method === 'PUT' &&
      !r.query.has('partNumber') &&
      new RegExp(`/${name}(/|\\.bs$)`).test(r.path);
    const held = (p?: FaultProxy) => () => (p?.injected.length ?? 0) > 0;
    const once = (pred: (r: ProxiedRequest) => boolean, fault: Fault) => {
      let done = false;
      return (r: ProxiedRequest) => {
        if (done || !pred(r)) return undefined;
        done = true;
        return fault;
      };
    };

    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      it(`${signal} while the first UploadPart is in flight`, async (t) => {
        await faultCase(t, kind(), `btrfs→S3 ${signal} at first UploadPart`, {
          signal,
          fault: once(isUploadPart, { kind: 'hold' }),
          trigger: ({ proxy, run }) => until(held(proxy), run),
        });
      });
    }
    it('SIGKILL after 6 MiB went up (second part in flight)', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 SIGKILL after 6 MiB uploaded', {
        trigger: ({ proxy, run }) => until(() => proxy!.bytesUp >= 6 * MiB, run),
      });
    });
    it('SIGKILL while CompleteMultipartUpload is held', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 SIGKILL at CompleteMultipartUpload', {
        fault: once(isComplete, { kind: 'hold' }),
        trigger: ({ proxy, run }) => until(held(proxy), run),
      });
    });
    it('SIGKILL while the PUT of s0.bs is held (diff stored, name file not yet)', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 SIGKILL at s0.bs PUT', {
        fault: once((r) => r.method === 'PUT' && r.path.endsWith('/s0.bs'), { kind: 'hold' }),
        trigger: ({ proxy, run }) => until(held(proxy), run),
      });
    });
    it('SIGTERM while the PutObject of the s1 diff is held', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 SIGTERM at s1 diff PUT', {
        signal: 'SIGTERM',
        fault: once((r) => isPut(r, 's1') && !r.path.endsWith('.bs'), { kind: 'hold' }),
        trigger: ({ proxy, run }) => until(held(proxy), run),
      });
    });
    it('SIGKILL while planning (the --no-data size probe runs)', async (t) => {
      await planningCase(t, kind(), 'btrfs→S3 SIGKILL at size probe', 'SIGKILL');
    });
    it('SIGKILL while planning, once the first measured size was recorded', async (t) => {
      await planningCase(t, kind(), 'btrfs→S3 SIGKILL at first .bs', 'SIGKILL', true);
    });
    it('500 on the first UploadPart', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 500 on UploadPart', {
        fault: once(isUploadPart, { kind: 'status', code: 500 }),
      });
    });
    it('503 on the first three UploadParts', async (t) => {
      let n = 0;
      await faultCase(t, kind(), 'btrfs→S3 503 on three UploadParts', {
        fault: (r) => (isUploadPart(r) && n++ < 3 ? { kind: 'status', code: 503 } : undefined),
      });
    });
    it('500 on CompleteMultipartUpload', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 500 on CompleteMultipartUpload', {
        fault: once(isComplete, { kind: 'status', code: 500 }),
      });
    });
    it('connection reset on the first UploadPart', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 reset on UploadPart', {
        fault: once(isUploadPart, { kind: 'reset' }),
      });
    });
    it('connection reset after CompleteMultipartUpload was carried out', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 reset after CompleteMultipartUpload', {
        fault: once(isComplete, { kind: 'reset-after' }),
      });
    });
    it('connection reset on the PutObject of the s2 diff', async (t) => {
      await faultCase(t, kind(), 'btrfs→S3 reset on s2 diff PUT', {
        fault: once((r) => isPut(r, 's2') && !r.path.endsWith('.bs'), { kind: 'reset' }),
      });
    });
  });

  // ---------------------------------------------------------------- S3 → btrfs

  describe('S3 → btrfs', () => {
    const kind = () =>
      toBtrfs(
        (p) => s3Args(p!.endpoint),
        () => s3Args(moto.endpoint),
        () => `s3://${BUCKET}/good/`,
        () => s3Store('good'),
        true,
      );
    const onceGet = (name: string, fault: Fault, prefix = 'good') => {
      let done = false;
      return (r: ProxiedRequest) => {
        if (done || !isDiffGet(r, prefix, name)) return undefined;
        done = true;
        return fault;
      };
    };
    /** The faulted run must not have received `name` under its final name. */
    const refused =
      (name: string) =>
      (r: { code: number | null }, _p: string[], dir?: string): string[] => [
        ...(r.code === 0 ? [`the run with a damaged ${name} succeeded`] : []),
        ...(dir && existsSync(join(dir, name))
          ? [`the damaged ${name} was received as final`]
          : []),
      ];

    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      it(`${signal} after 1 MiB of the s0 diff came down (body held)`, async (t) => {
        await faultCase(t, kind(), `S3→btrfs ${signal} after 1 MiB of s0`, {
          signal,
          fault: onceGet('s0', { kind: 'hold-body', afterBytes: MiB }),
          trigger: ({ proxy, run }) => until(() => proxy!.bytesDown >= MiB, run),
        });
      });
    }
    it('SIGKILL while the GET of the s1 diff is held (s0 committed)', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs SIGKILL at s1 GET', {
        fault: onceGet('s1', { kind: 'hold' }),
        trigger: ({ proxy, run }) => until(() => proxy!.injected.length > 0, run),
      });
    });
    it('SIGKILL when s0.part turns read-only (receiver done, before the rename)', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs SIGKILL at s0.part read-only', {
        trigger: ({ dir, run }) =>
          until(
            async () => existsSync(partOf(dir, 's0')) && (await isReadOnly(partOf(dir, 's0'))),
            run,
          ),
      });
    });
    it('SIGTERM when s1.part appears', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs SIGTERM at s1.part', {
        signal: 'SIGTERM',
        trigger: ({ dir, run }) => until(() => existsSync(partOf(dir, 's1')), run),
      });
    });
    it('500 on the first GET of the s0 diff', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs 500 on s0 GET', {
        fault: onceGet('s0', { kind: 'status', code: 500 }),
      });
    });
    it('connection reset on the first GET of the s1 diff', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs reset on s1 GET', {
        fault: onceGet('s1', { kind: 'reset' }),
      });
    });
    it('the s0 diff body truncated after 2 MiB', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs truncated s0 body', {
        fault: onceGet('s0', { kind: 'truncate', afterBytes: 2 * MiB }),
      });
    });
    it('a flipped byte in the body of the first s0 GET', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs flipped byte in s0 GET', {
        fault: onceGet('s0', { kind: 'flip', offset: 3 * MiB + 12345 }),
      });
    });
    it('a flipped byte in every GET of the s1 diff: s1 is refused', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs flipped byte in every s1 GET', {
        fault: (r) => (isDiffGet(r, 'good', 's1') ? { kind: 'flip', offset: 300 } : undefined),
        expect: refused('s1'),
      });
    });
    it('a flipped byte in every GET of the s2 diff near its end: s2 is refused', async (t) => {
      await faultCase(t, kind(), 'S3→btrfs flipped byte in every s2 GET (late)', {
        fault: (r) => (isDiffGet(r, 'good', 's2') ? { kind: 'flip', offset: 2000 } : undefined),
        expect: refused('s2'),
      });
    });
    it('a stored s1 diff whose stream-header version byte was changed: the restore refuses it', async (t) => {
      const s1 = (await s3Store('damaged').storedDiffs()).find((d) => /\/s1\//.test(d.key))!;
      const key = s1.key;
      const get = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      const good = Buffer.from(await get.Body!.transformToByteArray());
      const meta =
        (await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).Metadata ?? {};
      assert.ok(meta['buttersink-sha256'], 'the stored diff records its SHA-256');
      const bad = Buffer.from(good);
      bad[13] = bad[13] === 1 ? 2 : 1;
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bad, Metadata: meta }),
      );
      await faultCase(
        t,
        toBtrfs(
          (p) => s3Args(p!.endpoint),
          () => s3Args(moto.endpoint),
          () => `s3://${BUCKET}/damaged/`,
          () => s3Store('damaged'),
          true,
        ),
        'S3→btrfs stored header version byte flipped',
        {
          expect: refused('s1'),
          beforeRerun: async () => {
            await client.send(
              new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: good, Metadata: meta }),
            );
          },
        },
      );
    });
  });

  // ---------------------------------------------------------------- ssh

  describe('btrfs ↔ ssh', { skip: haveSshd ? false : 'sshd not found' }, () => {
    const sshEnv = () => ({ HOME: sshd!.home });
    const sshArgs = () => ['--remote-command', sshd!.remoteCommand];
    const pushKind = (): Kind => ({
      source: () => `${snaps}/`,
      faultArgs: sshArgs,
      plainArgs: sshArgs,
      env: sshEnv,
      async dest(id) {
        const dir = join(dst.mnt, id);
        await mkdir(dir);
        return {
          uri: `ssh://${sshd!.alias}${dir}/`,
          dir,
          problems: (all) => btrfsProblems(dir, all),
          cleanup: () => removeDir(dir),
        };
      },
    });
    const pullKind = (): Kind => {
      const kind = toBtrfs(sshArgs, sshArgs, () => `ssh://${sshd!.alias}${snaps}/`);
      kind.env = sshEnv;
      return kind;
    };
    const cases: [string, () => Kind, NodeJS.Signals, string][] = [
      ['btrfs → ssh', pushKind, 'SIGKILL', 's0'],
      ['btrfs → ssh', pushKind, 'SIGTERM', 's0'],
      ['ssh → btrfs', pullKind, 'SIGTERM', 's1'],
      ['ssh → btrfs', pullKind, 'SIGKILL', 's0'],
    ];
    for (const [dir, kind, signal, name] of cases) {
      const side = dir === 'btrfs → ssh' ? 'on the remote side' : 'locally';
      it(`${dir}: ${signal} when ${name}.part appears ${side}`, async (t) => {
        await faultCase(t, kind(), `${dir.replace(/ /g, '')} ${signal} at ${name}.part`, {
          signal,
          trigger: ({ dir: d, run }) => until(() => existsSync(partOf(d, name)), run),
        });
      });
    }
    it('btrfs → ssh: SIGKILL when the remote s0.part turned read-only (before the rename)', async (t) => {
      await faultCase(t, pushKind(), 'btrfs→ssh SIGKILL before the remote rename', {
        trigger: ({ dir: d, run }) =>
          until(
            async () => existsSync(partOf(d, 's0')) && (await isReadOnly(partOf(d, 's0'))),
            run,
            60_000,
            1,
          ),
      });
    });
    it('btrfs → ssh: SIGKILL while planning (the --no-data size probe runs)', async (t) => {
      await planningCase(t, pushKind(), 'btrfs→ssh SIGKILL while planning', 'SIGKILL');
    });

    /** The sshd processes of connections made since `before` (one per client connection). */
    const newSessions = (before: Set<number>) =>
      sshd!.sessionPids().filter((pid) => !before.has(pid));
    const signalAll = (pids: number[], signal: NodeJS.Signals) => {
      for (const pid of pids) {
        try {
          process.kill(pid, signal);
        } catch {
          // gone already
        }
      }
    };
    /** A network fault: kills (cut) or stops (stall) the connection's sshd on the trigger. */
    const networkCase = (
      t: { diagnostic(s: string): void },
      kind: Kind,
      what: string,
      name: string,
      how: 'cut' | 'stall',
    ) => {
      const before = new Set(sshd!.sessionPids());
      return faultCase(t, kind, what, {
        trigger: ({ dir: d, run }) => until(() => existsSync(partOf(d, name)), run),
        peerFault: async () => {
          const pids = newSessions(before);
          assert.ok(pids.length > 0, 'the connection has an sshd process');
          signalAll(pids, how === 'cut' ? 'SIGKILL' : 'SIGSTOP');
          return () => signalAll(pids, 'SIGCONT');
        },
        expect: (r) => {
          const last = r.out.trim().split('\n').slice(-1)[0] ?? '';
          const want =
            how === 'cut' ? /connection lost|closed/ : /idle limit|sent nothing|keepalive/;
          return [
            ...(r.code !== 0 ? [] : ['the faulted run exited 0']),
            ...(want.test(last) ? [] : [`unexpected last line: ${last}`]),
          ];
        },
      });
    };
    const withTimeout = (kind: Kind): Kind => ({
      ...kind,
      faultArgs: (p) => [...kind.faultArgs(p), '--timeout', '5'],
    });
    it("btrfs → ssh: the network cut (the connection's sshd killed) mid-stream", async (t) => {
      await networkCase(t, pushKind(), 'btrfs→ssh network cut at s0.part', 's0', 'cut');
    });
    it('ssh → btrfs: the network cut mid-stream', async (t) => {
      // At the first (full) transfer's .part: the later ones still need the network. At a
      // small incremental's, the whole of it may already be here when the cut lands.
      await networkCase(t, pullKind(), 'ssh→btrfs network cut at s0.part', 's0', 'cut');
    });
    it('btrfs → ssh: the network stalls mid-stream (sshd stopped); --timeout 5 ends the run', async (t) => {
      await networkCase(
        t,
        withTimeout(pushKind()),
        'btrfs→ssh network stall at s0.part',
        's0',
        'stall',
      );
    });
    it('ssh → btrfs: the network stalls mid-stream; --timeout 5 ends the run', async (t) => {
      await networkCase(
        t,
        withTimeout(pullKind()),
        'ssh→btrfs network stall at s0.part',
        's0',
        'stall',
      );
    });
  });

  // ---------------------------------------------------------------- tally

  it('tally: every fault held, every rerun converged', (t) => {
    t.diagnostic(
      `fault injection: ${tally.tried} faults tried, ${tally.held} held, ${tally.lost} lost`,
    );
    assert.equal(tally.lost, 0, lostCases.join('\n'));
    assert.ok(tally.tried >= 20, `at least 20 faults tried (${tally.tried})`);
  });
});
