// receiveGuard's first-command checks on hand-made SUBVOL/SNAPSHOT commands:
// missing or mis-sized UUID attributes, case of the announced UUIDs, and a
// full stream given a parent root.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Attr, Cmd } from '../../../src/btrfs/send-stream/constants.js';
import type { SendAttribute } from '../../../src/btrfs/send-stream/types.js';
import { uuidFromString, writeU64 } from '../../../src/btrfs/send-stream/values.js';
import { StreamRefusedError, UsageError } from '../../../src/errors.js';
import { receiveGuard } from '../../../src/stages/receive-guard.js';
import type { ReceiveGuardOptions } from '../../../src/stages/receive-guard.js';
import { StreamBuilder } from '../../fixtures/hostile-streams.js';
import { runThrough, runThroughCatching } from '../../fixtures/streams/index.js';

const TARGET = '11111111-2222-4333-8444-555555555555';
const PARENT = '66666666-7777-4888-8999-aaaaaaaaaaaa';
const name = { type: Attr.PATH, value: Buffer.from('snap') };
const ctransid = { type: Attr.CTRANSID, value: writeU64(10) };
const uuid = (type: number, value: Buffer): SendAttribute => ({ type, value });

/** A stream of one first command with `attrs`, a file, END. */
async function first(cmd: number, attrs: SendAttribute[]): Promise<Buffer> {
  const b = await StreamBuilder.create();
  return b.cmd(cmd, attrs).mkfile('f').write('f', 'x').end().bytes();
}

async function refusedRule(bytes: Buffer, opts: ReceiveGuardOptions) {
  const { bytes: out, error } = await runThroughCatching([bytes], receiveGuard(opts).stream);
  assert.ok(error instanceof StreamRefusedError, `not refused: ${String(error)}`);
  assert.equal(error.commandIndex, 0);
  assert.ok(out.length <= 17, 'no byte of the refused command passed');
  return error;
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'guard-first-'));
  mkdirSync(join(dir, 'parent'));
  symlinkSync('/tmp', join(dir, 'parent/lnk'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('receiveGuard first command', () => {
  it('refuses a SUBVOL without a UUID or with one that is not 16 bytes (rule target-uuid)', async () => {
    const target = uuidFromString(TARGET);
    for (const attrs of [
      [name, ctransid],
      [name, uuid(Attr.UUID, Buffer.concat([target, Buffer.from([0])])), ctransid],
      [name, uuid(Attr.UUID, target.subarray(0, 15)), ctransid],
    ]) {
      const err = await refusedRule(await first(Cmd.SUBVOL, attrs), { target: TARGET });
      assert.equal(err.rule, 'target-uuid');
      assert.match(err.message, /creates \?, not the announced/);
    }
  });

  it('refuses a SNAPSHOT without a parent UUID or with one that is not 16 bytes (rule parent-uuid)', async () => {
    const parent = uuidFromString(PARENT);
    for (const clone of [[], [uuid(Attr.CLONE_UUID, Buffer.concat([parent, parent]))]]) {
      const bytes = await first(Cmd.SNAPSHOT, [
        name,
        uuid(Attr.UUID, uuidFromString(TARGET)),
        ctransid,
        ...clone,
      ]);
      const err = await refusedRule(bytes, { target: TARGET, parent: PARENT });
      assert.equal(err.rule, 'parent-uuid');
      assert.match(err.message, /based on \?, not the announced parent/);
    }
  });

  it('matches announced UUIDs whatever their case; refuses options that are not UUIDs', async () => {
    const b = await StreamBuilder.create();
    const bytes = b.snapshot('snap', TARGET, PARENT).mkfile('f').end().bytes();
    const out = await runThrough(
      [bytes],
      receiveGuard({ target: TARGET.toUpperCase(), parent: PARENT.toUpperCase() }).stream,
    );
    assert.ok(out.bytes.equals(bytes));
    assert.throws(() => receiveGuard({ target: 'snap' }), UsageError);
    assert.throws(() => receiveGuard({ target: TARGET, parent: 'x' }), UsageError);
    assert.doesNotThrow(() => receiveGuard({ target: TARGET }).stream.destroy());
  });

  it('a full stream does not consult the parent root: its new names are its own', async () => {
    const b = await StreamBuilder.create();
    const bytes = b.subvol('snap', TARGET).mkfile('lnk').write('lnk', 'x').end().bytes();
    const g = receiveGuard({ target: TARGET, parentRoot: join(dir, 'parent') });
    const out = await runThrough([bytes], g.stream);
    assert.ok(out.bytes.equals(bytes));
    assert.deepEqual(await g.result, { commands: 4, bytes: bytes.length });
  });
});
