import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamCorruptError, StreamRefusedError } from '../../../src/errors.js';
import { receiveGuard } from '../../../src/stages/receive-guard.js';
import type { ReceiveGuardOptions } from '../../../src/stages/receive-guard.js';
import { HOSTILE, StreamBuilder } from '../../fixtures/hostile-streams.js';
import type { HostileContext } from '../../fixtures/hostile-streams.js';
import {
  FIXTURES,
  fixture,
  golden,
  randomChunks,
  rng,
  runThrough,
  runThroughCatching,
} from '../../fixtures/streams/index.js';

const TARGET = '11111111-2222-4333-8444-555555555555';
const PARENT = '66666666-7777-4888-8999-aaaaaaaaaaaa';
let dir: string;
let ctx: HostileContext;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'guard-'));
  mkdirSync(join(dir, 'parent/sub'), { recursive: true });
  writeFileSync(join(dir, 'parent/file'), 'x');
  symlinkSync('/tmp', join(dir, 'parent/lnk'));
  symlinkSync('/etc/hostname', join(dir, 'parent/sub/flnk'));
  ctx = {
    target: TARGET,
    name: 'snap',
    parent: PARENT,
    canary: '/tmp/canary',
    outsideUuid: 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff',
    parentSymlink: 'lnk',
  };
});
after(() => rmSync(dir, { recursive: true, force: true }));

function guard(extra: Partial<ReceiveGuardOptions> = {}) {
  return receiveGuard({ target: TARGET, parentRoot: join(dir, 'parent'), ...extra });
}

async function refusal(bytes: Buffer, opts: Partial<ReceiveGuardOptions> = {}) {
  const { bytes: out, error } = await runThroughCatching(
    randomChunks(bytes, rng(7), 64),
    guard(opts).stream,
  );
  assert.ok(error, 'stream was accepted');
  return { out, error };
}

/** Wraps `body` (commands) between a SUBVOL/SNAPSHOT and END. */
async function stream(incremental: boolean, body: (b: StreamBuilder) => StreamBuilder) {
  const b = await StreamBuilder.create();
  if (incremental) b.snapshot('snap', TARGET, PARENT);
  else b.subvol('snap', TARGET);
  return body(b).end().bytes();
}

describe('receiveGuard', () => {
  it('passes every recorded kernel stream unchanged, in any chunking', async () => {
    for (const name of FIXTURES.filter((f) => !f.startsWith('multi'))) {
      const first = golden(name).events.find((e) => e.type === 'command') as {
        attributes: { name: string; value: string }[];
      };
      const attr = (n: string) => first.attributes.find((a) => a.name === n)?.value;
      const bytes = fixture(name);
      const opts = {
        target: attr('uuid')!,
        ...(attr('clone_uuid') ? { parent: attr('clone_uuid')! } : {}),
      };
      const out = await runThrough(randomChunks(bytes, rng(3), 999), receiveGuard(opts).stream);
      assert.ok(out.bytes.equals(bytes), name);
    }
  });

  for (const c of HOSTILE) {
    it(`refuses ${c.name} (rule ${c.rule}), passing no byte of the refused command`, async () => {
      const bytes = await c.build(ctx);
      const { out, error } = await refusal(bytes, c.incremental ? { parent: PARENT } : {});
      if (c.rule === 'corrupt') {
        assert.ok(error instanceof StreamCorruptError, String(error));
      } else {
        assert.ok(error instanceof StreamRefusedError, String(error));
        assert.equal(error.rule, c.rule, error.message);
        assert.match(
          error.message,
          new RegExp(`^send stream refused \\(${c.rule}\\): command \\d+`),
        );
        assert.doesNotMatch(error.message, /\n/);
      }
      // Nothing of the refused command or after it came out.
      assert.ok(out.length < bytes.length);
      assert.ok(bytes.subarray(0, out.length).equals(out));
    });
  }

  it('refuses a multi-subvolume kernel stream (btrfs send a b)', async () => {
    const bytes = fixture('multi-v1');
    const first = golden('multi-v1').events.find((e) => e.type === 'command') as {
      attributes: { name: string; value: string }[];
    };
    const target = first.attributes.find((a) => a.name === 'uuid')!.value;
    const { error } = await runThroughCatching([bytes], receiveGuard({ target }).stream);
    assert.ok(error instanceof StreamRefusedError && error.rule === 'one-subvolume', String(error));
  });

  it('an incremental must start with a SNAPSHOT of the announced parent, a full with a SUBVOL', async () => {
    const full = await stream(false, (b) => b);
    const r1 = await refusal(full, { parent: PARENT });
    assert.equal((r1.error as StreamRefusedError).rule, 'first-command');
    const incr = await stream(true, (b) => b);
    const r2 = await refusal(incr);
    assert.equal((r2.error as StreamRefusedError).rule, 'first-command');
    const other = await refusal(incr, { parent: ctx.outsideUuid });
    assert.equal((other.error as StreamRefusedError).rule, 'parent-uuid');
  });

  it('requires END', async () => {
    const b = await StreamBuilder.create();
    const { error } = await refusal(b.subvol('snap', TARGET).mkfile('a').bytes());
    assert.ok(error instanceof StreamCorruptError);
    assert.match(error.message, /without END/);
  });

  it('allows what the kernel sends around symlinks: chown, utimes, xattrs, rename, unlink, link', async () => {
    const bytes = await stream(false, (b) =>
      b
        .symlink('o301-5-0', '/etc/passwd')
        .rename('o301-5-0', 'lnk')
        .chown('lnk')
        .link('lnk2', 'lnk')
        .unlink('lnk2')
        .mkdir('o302-5-0')
        .rename('o302-5-0', 'dir')
        .mkfile('dir/f')
        .write('dir/f', 'data')
        .truncate('dir/f', 4)
        .chmod('dir/f', 0o644),
    );
    const out = await runThrough([bytes], guard().stream);
    assert.ok(out.bytes.equals(bytes));
  });

  it('a hard link to a symlink is a symlink; a file replacing a symlink is a file', async () => {
    const viaLink = await stream(false, (b) =>
      b.symlink('l', '/tmp').link('h', 'l').write('h', 'x'),
    );
    assert.equal(((await refusal(viaLink)).error as StreamRefusedError).rule, 'symlink');
    const replaced = await stream(false, (b) =>
      b.symlink('l', '/tmp').unlink('l').mkfile('l').write('l', 'x'),
    );
    await runThrough([replaced], guard().stream);
  });

  it('symlinks inherited from the parent: refused to write through, fine to replace', async () => {
    const deep = await stream(true, (b) => b.write('sub/flnk', 'x'));
    const r = await refusal(deep, { parent: PARENT });
    assert.equal((r.error as StreamRefusedError).rule, 'symlink');
    assert.match(r.error instanceof Error ? r.error.message : '', /sub\/flnk/);
    const moved = await stream(true, (b) => b.rename('sub', 'moved').write('moved/flnk', 'x'));
    assert.equal(
      ((await refusal(moved, { parent: PARENT })).error as StreamRefusedError).rule,
      'symlink',
    );
    const ok = await stream(true, (b) =>
      b.unlink('lnk').mkdir('lnk').mkfile('lnk/f').write('lnk/f', 'x').write('file', 'y'),
    );
    await runThrough([ok], guard({ parent: PARENT }).stream);
  });

  it('clones only from the new subvolume or the announced parent, never through a symlink', async () => {
    const self = await stream(false, (b) =>
      b.mkfile('a').mkfile('b').clone('b', TARGET, 'a', 4096),
    );
    await runThrough([self], guard().stream);
    const fromParent = await stream(true, (b) => b.mkfile('b').clone('b', PARENT, 'file', 4096));
    await runThrough([fromParent], guard({ parent: PARENT }).stream);
    const viaLink = await stream(true, (b) => b.mkfile('b').clone('b', PARENT, 'lnk/x', 4096));
    assert.equal(
      ((await refusal(viaLink, { parent: PARENT })).error as StreamRefusedError).rule,
      'symlink',
    );
    const dotdot = await stream(false, (b) => b.mkfile('b').clone('b', TARGET, '../x', 4096));
    assert.equal(((await refusal(dotdot)).error as StreamRefusedError).rule, 'path');
  });

  it('keeps no state per plain file of a full stream (memory grows with directories and symlinks)', async () => {
    const b = await StreamBuilder.create();
    b.subvol('snap', TARGET);
    for (let i = 0; i < 20000; i++) b.mkfile(`f${i}`);
    const bytes = b.end().bytes();
    const before = process.memoryUsage().heapUsed;
    const g = guard();
    await runThrough(randomChunks(bytes, rng(1), 65536), g.stream);
    assert.equal((await g.result).commands, 20002);
    const grown = process.memoryUsage().heapUsed - before;
    assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${grown}`);
  });
});
