/**
 * joinProcesses: two real processes joined by an OS pipe; no byte through Node.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { AbortedError } from '../../../src/errors.js';
import { joinProcesses } from '../../../src/streams/os-pipe.js';
import type { Progress } from '../../../src/streams/progress-tap.js';
import { ownReadBytes } from '../../fixtures/own-io.js';

const MiB = 1024 * 1024;

/** `sh -c script` as joinProcesses wants it; `done` rejects naming the exit code or signal. */
function sh(script: string, stdin: 'ignore' | Readable = 'ignore') {
  const c = spawn('sh', ['-c', script], { stdio: [stdin, 'pipe', 'ignore'] });
  const done = new Promise<void>((resolve, reject) =>
    c.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${script}: ${code ?? signal}`)),
    ),
  );
  done.catch(() => undefined);
  return { pid: c.pid, done, kill: () => c.kill('SIGTERM'), stdout: c.stdout ?? undefined };
}

function alive(pid: number | undefined): boolean {
  try {
    process.kill(pid!, 0);
    return true;
  } catch {
    return false;
  }
}

describe('joinProcesses', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'os-pipe-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('moves every byte from source to sink, none through this process, counted by the kernel', async () => {
    const out = join(dir, 'out');
    const reports: Progress[] = [];
    const before = ownReadBytes();
    const r = await joinProcesses(
      () => sh(`head -c ${64 * MiB} /dev/zero`),
      // The shell outlives cat a little, so a sample after cat's end sees its whole count.
      (stdin) => sh(`cat > ${out}; sleep 0.3`, stdin),
      { onProgress: (p) => reports.push(p), total: 64 * MiB, pollMs: 20 },
    );
    const through = ownReadBytes() - before;
    assert.equal((await stat(out)).size, 64 * MiB);
    assert.ok(through < 4 * MiB, `this process read ${through} bytes`);
    // What both read: the stream (the sink), 64 MiB of /dev/zero (the source: head reads
    // what it writes), plus the few KiB they read of other files.
    assert.ok(r.bytes >= 128 * MiB && r.bytes < 129 * MiB, `counted ${r.bytes}`);
    const last = reports.at(-1);
    assert.equal(last?.done, true);
    assert.equal(last?.bytes, r.bytes);
    assert.equal(reports.filter((p) => p.done).length, 1);
  });

  it('the same bytes piped through Node show in its count (the check above can fail)', async () => {
    const before = ownReadBytes();
    const src2 = spawn('sh', ['-c', `head -c ${64 * MiB} /dev/zero`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const sink2 = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    src2.stdout.pipe(sink2.stdin);
    await new Promise((resolve) => sink2.once('exit', resolve));
    assert.ok(ownReadBytes() - before >= 64 * MiB);
  });

  it('a failing source fails the join with its error; the sink is reaped', async () => {
    let sinkPid: number | undefined;
    await assert.rejects(
      joinProcesses(
        () => sh(`head -c ${MiB} /dev/zero; exit 3`),
        (stdin) => {
          const s = sh('cat > /dev/null; sleep 0.2', stdin);
          sinkPid = s.pid;
          return s;
        },
      ),
      /exit 3|: 3$/,
    );
    assert.equal(alive(sinkPid), false);
  });

  it('a failing sink kills the source and fails the join with the sink’s error', async () => {
    let srcPid: number | undefined;
    await assert.rejects(
      joinProcesses(
        () => {
          const s = sh('exec sleep 60');
          srcPid = s.pid;
          return s;
        },
        (stdin) => sh('exit 4', stdin),
      ),
      /: 4$/,
    );
    assert.equal(alive(srcPid), false);
  });

  it('a sink that fails and breaks the source’s pipe is the root cause, not the SIGPIPE', async () => {
    await assert.rejects(
      joinProcesses(
        () => sh(`exec head -c ${1024 * MiB} /dev/zero`),
        (stdin) => sh('head -c 1 > /dev/null; exit 5', stdin),
        // head reports the broken pipe by exit code 1 (btrfs send is killed by SIGPIPE).
        { brokenPipe: (err) => /zero: (1|SIGPIPE)$/.test((err as Error).message) },
      ),
      /: 5$/,
    );
  });

  it('an abort kills both and rejects with an AbortedError', async () => {
    const ac = new AbortController();
    const pids: (number | undefined)[] = [];
    const joined = joinProcesses(
      () => {
        const s = sh('exec sleep 60');
        pids.push(s.pid);
        return s;
      },
      (stdin) => {
        const s = sh('exec cat > /dev/null', stdin);
        pids.push(s.pid);
        return s;
      },
      { signal: ac.signal },
    );
    ac.abort(new Error('user pressed ^C'));
    await assert.rejects(joined, AbortedError);
    assert.deepEqual(
      pids.map((p) => alive(p)),
      [false, false],
    );
  });

  it('a sink that cannot start: the source is killed and reaped, the error rethrown', async () => {
    let srcPid: number | undefined;
    await assert.rejects(
      joinProcesses(
        () => {
          const s = sh('exec sleep 60');
          srcPid = s.pid;
          return s;
        },
        () => {
          throw new Error('no receiver today');
        },
      ),
      /no receiver today/,
    );
    assert.equal(alive(srcPid), false);
  });
});
