/**
 * What the CLI draws, as a user sees it: on a terminal (a real pseudo-terminal,
 * from util-linux `script`) the progress display is redrawn in place while the
 * transfer runs, with an overall line when several snapshots are sent; into a pipe or a file (cron, logs) nothing but plain lines,
 * no carriage return and no escape sequence.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { REPO, binCommand, runCli } from '../fixtures/cli.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });
const MiB = 1024 * 1024;

/** Shell-quotes one argument for `script -c`. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A redraw in place (log-update): erase the line drawn (ESC [2K), cursor up
 * (ESC [1A) and again, back to column 1 (ESC [G), then the new text.
 */
// eslint-disable-next-line no-control-regex
const REDRAW = /\x1b\[2K(?:\x1b\[1A\x1b\[2K)+\x1b\[G([^\x1b]+)/g;

describe('the CLI on a terminal and off it', { skip }, () => {
  let A: BtrfsFs;
  let B: BtrfsFs;
  let snaps: string;

  before(async () => {
    [A, B] = await Promise.all([
      createBtrfs({ size: 1536 * MiB }),
      createBtrfs({ size: 1536 * MiB }),
    ]);
    const live = await subvolume(join(A.mnt, 'live'));
    snaps = join(A.mnt, 'snaps');
    await mkdir(snaps);
    await makeTree(live, 0, { bigMiB: 400 });
    await snapshot(live, join(snaps, 's0'));
    await makeTree(live, 1, { bigMiB: 400 });
    await snapshot(live, join(snaps, 's1'));
  });
  after(async () => {
    await Promise.all([A?.cleanup(), B?.cleanup()]);
  });

  it('in a pseudo-terminal the progress line is redrawn in place during the transfer', async () => {
    const dst = join(B.mnt, 'tty');
    await mkdir(dst);
    const command = [...binCommand('buttersink'), `${snaps}/`, `${dst}/`].map(q).join(' ');
    // script gives the command a pty on stdin/stdout/stderr and copies what it draws to our pipe.
    const child = spawn('script', ['-q', '-f', '-e', '-c', command, '/dev/null'], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, TERM: 'xterm', COLUMNS: '120' },
    });
    let out = '';
    const whilePart: string[] = [];
    child.stdout.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      out += text;
      // A redraw seen while the receive is still partial: under its `.part` name, or
      // (the fused local path) in place under its `.s0.receiving` marker: mid-transfer.
      if (existsSync(join(dst, 's0.part')) || existsSync(join(dst, '.s0.receiving'))) {
        for (const m of text.matchAll(REDRAW)) whilePart.push(m[1]!);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, out);
    assert.ok(existsSync(join(dst, 's0')), 'the snapshot arrived');
    assert.ok(
      whilePart.length > 0,
      `a progress line was drawn while s0 was partial; output: ${JSON.stringify(out.slice(0, 2000))}`,
    );
    assert.ok(
      whilePart.some((line) => /s0/.test(line) && /\d/.test(line)),
      `the progress line names the snapshot and a figure: ${JSON.stringify(whilePart.slice(0, 5))}`,
    );
    // Two snapshots to send: an overall line under it (the pty turns \n into \r\n).
    assert.ok(
      whilePart.some((text) =>
        /^ {2}s0 \(1 of 2\): [\d.]+ \S+ of [\d.]+ \S+ at .*\r?\n {2}overall: 0 of 2 snapshots done, [\d.]+ \S+ of [\d.]+ \S+\r?\n/.test(
          text,
        ),
      ),
      `an overall line under the transfer line: ${JSON.stringify(whilePart.slice(0, 5))}`,
    );
  });

  it('into a pipe, a run prints plain lines only: no carriage return, no escape sequence', async () => {
    const dst = join(B.mnt, 'pipe');
    await mkdir(dst);
    const r = await runCli([`${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(existsSync(join(dst, 's0')));
    const all = r.stdout + r.stderr;
    assert.ok(all.trim().length > 0, 'the run printed something');
    // eslint-disable-next-line no-control-regex
    const control = all.match(/[\x00-\x09\x0b-\x1f\x7f]/g) ?? [];
    assert.deepEqual(control, [], `control characters in: ${JSON.stringify(all)}`);
  });
});
