import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeComp,
  descendants,
  parseAcct,
  parseProcStat,
  pathResolver,
  processTable,
} from '../../../bench/profile-acct.js';
import type { AcctRecord, LongLived } from '../../../bench/profile-acct.js';

/** comp_t for small values (mantissa only). */
const comp = (ticks: number) => {
  let exp = 0;
  let v = ticks;
  while (v > 0x1fff) {
    v >>= 3;
    exp++;
  }
  return (exp << 13) | v;
};

/** One acct v3 record as the kernel writes it (x86: little-endian). */
function record(r: AcctRecord, version = 3): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt8(r.forkOnly ? 1 : 0, 0);
  b.writeUInt8(version, 1);
  b.writeUInt32LE(r.pid, 16);
  b.writeUInt32LE(r.ppid, 20);
  b.writeUInt32LE(r.startedAt, 24);
  b.writeFloatLE(r.elapsedSeconds * 100, 28);
  b.writeUInt16LE(comp(Math.round(r.userSeconds * 100)), 32);
  b.writeUInt16LE(comp(Math.round(r.sysSeconds * 100)), 34);
  b.write(r.comm, 48, 'latin1');
  return b;
}

const rec = (
  pid: number,
  ppid: number,
  comm: string,
  user: number,
  sys: number,
  startedAt = 1000,
): AcctRecord => ({
  pid,
  startedAt,
  ppid,
  comm,
  userSeconds: user,
  sysSeconds: sys,
  elapsedSeconds: 1.5,
  forkOnly: false,
});

describe('bench process accounting', () => {
  it('decodes comp_t: 13-bit mantissa, base-8 exponent', () => {
    assert.equal(decodeComp(0), 0);
    assert.equal(decodeComp(0x1fff), 8191);
    assert.equal(decodeComp((1 << 13) | 1000), 8000);
    assert.equal(decodeComp((2 << 13) | 3), 192);
  });

  it('parses v3 records: pid, parent, command name, CPU and elapsed time in seconds', () => {
    const a = { ...rec(100, 1, 'btrfs', 0.25, 2.31), forkOnly: true };
    const b = rec(101, 100, 'a-fifteen-char-', 12, 0);
    const parsed = parseAcct(Buffer.concat([record(a), record(b)]));
    assert.equal(parsed.length, 2);
    assert.deepEqual(parsed[0], a);
    assert.equal(parsed[1]!.comm, 'a-fifteen-char-');
    assert.equal(parsed[1]!.userSeconds, 12);
  });

  it('refuses records of another format instead of misreading them', () => {
    assert.throws(() => parseAcct(record(rec(1, 0, 'x', 0, 0), 2)), /version 2, not v3/);
    assert.throws(() => parseAcct(record(rec(1, 0, 'x', 0, 0), 0x83)), /not v3 little-endian/);
  });

  it('adds up the processes below the command and below long-lived servers, and nothing else', () => {
    // Command shell 10 → node 11 → btrfs 12 and 13; sshd 5 (long-lived) → sshd 20 → bash 21 → node 22.
    const records = [
      rec(12, 11, 'btrfs', 0.1, 2.0),
      rec(13, 11, 'btrfs', 0.05, 0.5),
      rec(11, 10, 'node', 1.5, 0.7),
      rec(10, 9, 'bash', 0, 0.01),
      rec(22, 21, 'node', 0.9, 0.3),
      rec(21, 20, 'bash', 0, 0),
      rec(20, 5, 'sshd', 1.1, 0.4),
      rec(99, 1, 'cron', 5, 5), // another process on the machine
    ];
    const before: LongLived[] = [
      { pid: 5, ppid: 9, comm: 'sshd', userSeconds: 1, sysSeconds: 1 },
      { pid: 6, ppid: 9, comm: 'moto_server', userSeconds: 10, sysSeconds: 2 },
    ];
    const after: LongLived[] = [
      { pid: 5, ppid: 9, comm: 'sshd', userSeconds: 1, sysSeconds: 1 },
      { pid: 6, ppid: 9, comm: 'moto_server', userSeconds: 13.5, sysSeconds: 2.5 },
    ];
    const table = processTable(records, [10, 5, 6], before, after);
    assert.deepEqual(
      table.map((p) => [p.path, p.count, +p.userSeconds.toFixed(2), +p.sysSeconds.toFixed(2)]),
      [
        ['bash', 1, 0, 0.01],
        ['bash › node', 1, 1.5, 0.7],
        ['bash › node › btrfs', 2, 0.15, 2.5],
        ['moto_server', 1, 3.5, 0.5],
        ['sshd › sshd', 1, 1.1, 0.4],
        ['sshd › sshd › bash', 1, 0, 0],
        ['sshd › sshd › bash › node', 1, 0.9, 0.3],
      ],
    );
    assert.equal(table.find((p) => p.path === 'moto_server')!.elapsedSeconds, undefined);
    const pathOf = pathResolver(records, [10, 5, 6], after);
    assert.equal(pathOf(22), 'sshd › sshd › bash › node');
    assert.equal(pathOf(99), undefined);
  });

  it('names a process by the program it ran last: bash -c execs a single command', () => {
    // bash -c 'node …': the shell's pid becomes node, which spawns btrfs.
    const records = [rec(11, 10, 'btrfs', 0, 1), rec(10, 9, 'node', 1, 0)];
    assert.deepEqual(
      processTable(records, [10], [], []).map((p) => p.path),
      ['node', 'node › btrfs'],
    );
  });

  it('keeps out other processes whose parent pid was reused by one of ours', () => {
    // Ours: node 11 (started 1000) under root 10. Elsewhere: bash 11 started at 900 and
    // exited; its child basename 50 (started 990) exited in the run; then pid 11 was reused.
    const records = [
      rec(11, 10, 'bash', 0, 0, 900),
      rec(50, 11, 'basename', 0, 0.02, 990),
      rec(12, 11, 'btrfs', 0, 1, 1001),
      rec(11, 10, 'node', 1, 0, 1000),
      rec(10, 9, 'bash', 0, 0, 1000),
    ];
    // No start-time filter: the parent check alone keeps basename (and the old bash) out.
    assert.deepEqual(
      processTable(records, [10], [], []).map((p) => p.path),
      ['bash', 'bash › node', 'bash › node › btrfs'],
    );
  });

  it('leaves out processes that started before the run (an earlier sshd session ending in it)', () => {
    const sshd = { pid: 5, ppid: 1, comm: 'sshd', userSeconds: 0, sysSeconds: 0 };
    const records = [rec(60, 5, 'sshd', 0.5, 0.5, 900), rec(61, 5, 'sshd', 0.25, 0.25, 1000)];
    const table = (since?: number) =>
      processTable(records, [5], [sshd], [sshd], since).map((p) => [
        p.path,
        p.count,
        p.userSeconds,
      ]);
    assert.deepEqual(table(999), [['sshd › sshd', 1, 0.25]]);
    assert.deepEqual(table(), [['sshd › sshd', 2, 0.75]]);
  });

  it('reads /proc/<pid>/stat whose command name holds spaces and parentheses', () => {
    const text = '4242 (tmux: se (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 1 0';
    assert.deepEqual(parseProcStat(text), {
      pid: 4242,
      comm: 'tmux: se (x)',
      ppid: 17,
      userSeconds: 2.5,
      sysSeconds: 0.37,
    });
  });

  it('lists descendants of a pid, not its siblings', () => {
    const p = (pid: number, ppid: number) => ({
      pid,
      ppid,
      comm: 'x',
      userSeconds: 0,
      sysSeconds: 0,
    });
    const all = [p(1, 0), p(2, 1), p(3, 2), p(4, 1), p(5, 3), p(6, 0)];
    assert.deepEqual(
      descendants(all, 2).map((x) => x.pid),
      [3, 5],
    );
  });
});
