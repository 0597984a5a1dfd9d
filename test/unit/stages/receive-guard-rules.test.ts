// receiveGuard: each part of each rule on its own, on hand-made streams
// (the hostile cases in receive-guard.test.ts each hit one part).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Attr, Cmd } from '../../../src/btrfs/send-stream/constants.js';
import { serializeStreamHeader } from '../../../src/btrfs/send-stream/serialize.js';
import { writeU64 } from '../../../src/btrfs/send-stream/values.js';
import { StreamRefusedError } from '../../../src/errors.js';
import { receiveGuard } from '../../../src/stages/receive-guard.js';
import { StreamBuilder } from '../../fixtures/hostile-streams.js';
import { runThroughCatching } from '../../fixtures/streams/index.js';

const TARGET = '11111111-2222-4333-8444-555555555555';
const PARENT = '66666666-7777-4888-8999-aaaaaaaaaaaa';

async function full(body: (b: StreamBuilder) => StreamBuilder): Promise<Buffer> {
  const b = await StreamBuilder.create();
  return body(b.subvol('snap', TARGET)).end().bytes();
}

/** The refusal of `bytes`; fails when accepted or failed otherwise. */
async function refusedBy(bytes: Buffer, rule: string, parent?: string) {
  const g = receiveGuard({ target: TARGET, ...(parent ? { parent } : {}) });
  const { bytes: out, error } = await runThroughCatching([bytes], g.stream);
  assert.ok(error instanceof StreamRefusedError, `not refused: ${String(error)}`);
  assert.equal(error.rule, rule, error.message);
  assert.ok(out.length < bytes.length);
  return error;
}

const BAD_PATHS: [string, RegExp][] = [
  ['a//b', /has a '' component/],
  ['a/', /has a '' component/],
  ['.', /has a '\.' component/],
  ['a/./b', /has a '\.' component/],
  ['a\0b', /"a\\u0000b" contains NUL/],
  ['\0a', /contains NUL/],
  ['/etc/x', /"\/etc\/x" is absolute/],
];

describe('receiveGuard rules, part by part', () => {
  it('refuses empty, `.`, NUL and absolute paths in every path attribute', async () => {
    for (const [bad, why] of BAD_PATHS) {
      const cases: [string, (b: StreamBuilder) => StreamBuilder][] = [
        ['path (mkfile)', (b) => b.mkfile(bad)],
        ['path_to (rename)', (b) => b.mkfile('f').rename('f', bad)],
        ['path_link (link)', (b) => b.mkfile('f').link('g', bad)],
        ['clone_path (clone)', (b) => b.mkfile('f').clone('f', TARGET, bad, 4096)],
      ];
      for (const [what, body] of cases) {
        const err = await refusedBy(await full(body), 'path');
        assert.match(err.message, why, `${what} ${JSON.stringify(bad)}`);
      }
    }
  });

  it('refuses an empty path and a missing path attribute, also for commands allowed on the root', async () => {
    const emptyFile = await full((b) => b.mkfile(''));
    assert.match((await refusedBy(emptyFile, 'path')).message, /\(mkfile\) path is empty/);
    const noPath = await full((b) =>
      b.cmd(Cmd.CHOWN, [
        { type: Attr.UID, value: writeU64(0) },
        { type: Attr.GID, value: writeU64(0) },
      ]),
    );
    assert.match((await refusedBy(noPath, 'path')).message, /lacks its path/);
  });

  it('refuses every subvolume name that is not one plain component', async () => {
    for (const name of ['', '.', '..', 'a/b', 'a\x01b', 'a\x7f']) {
      const b = await StreamBuilder.create();
      const bytes = b.subvol(name, TARGET).end().bytes();
      await refusedBy(bytes, 'subvolume-name');
    }
    const b = await StreamBuilder.create();
    const noName = b
      .cmd(Cmd.SUBVOL, [{ type: Attr.UUID, value: Buffer.from(TARGET.replace(/-/g, ''), 'hex') }])
      .end()
      .bytes();
    await refusedBy(noName, 'subvolume-name');
    const long = await StreamBuilder.create();
    const err = await refusedBy(
      long
        .subvol(`${'n'.repeat(500)}\n`, TARGET)
        .end()
        .bytes(),
      'subvolume-name',
    );
    assert.ok(err.message.length < 400, `message of ${err.message.length} chars`);
  });

  it('refuses a second stream header after END, even with nothing but END after it', async () => {
    const b = await StreamBuilder.create();
    const bytes = b.subvol('snap', TARGET).end().raw(serializeStreamHeader(1)).end().bytes();
    await refusedBy(bytes, 'one-subvolume');
  });

  it('refuses a SUBVOL or SNAPSHOT after the first command, in full and incremental streams', async () => {
    await refusedBy(await full((b) => b.snapshot('x', PARENT, TARGET)), 'one-subvolume');
    const b = await StreamBuilder.create();
    const incr = b.snapshot('snap', TARGET, PARENT).subvol('x', PARENT).end().bytes();
    await refusedBy(incr, 'one-subvolume', PARENT);
  });

  it('names the diff kind a wrong first command needed', async () => {
    const b = await StreamBuilder.create();
    const snap = b.snapshot('snap', TARGET, PARENT).end().bytes();
    assert.match((await refusedBy(snap, 'first-command')).message, /for a full diff/);
    const c = await StreamBuilder.create();
    const sub = c.subvol('snap', TARGET).end().bytes();
    assert.match(
      (await refusedBy(sub, 'first-command', PARENT)).message,
      /for an incremental diff/,
    );
  });

  it('refuses a clone without a source UUID in a full stream, and a clone from a symlink', async () => {
    const noSource = await full((b) =>
      b.mkfile('f').cmd(Cmd.CLONE, [
        { type: Attr.PATH, value: Buffer.from('f') },
        { type: Attr.FILE_OFFSET, value: writeU64(0) },
        { type: Attr.CLONE_LEN, value: writeU64(4096) },
        { type: Attr.CLONE_PATH, value: Buffer.from('f') },
        { type: Attr.CLONE_OFFSET, value: writeU64(0) },
      ]),
    );
    const err = await refusedBy(noSource, 'clone-source');
    assert.match(err.message, /reads from subvolume \?/);
    const fromLink = await full((b) =>
      b.symlink('l', '/etc/shadow').mkfile('f').clone('f', TARGET, 'l', 4096),
    );
    assert.match((await refusedBy(fromLink, 'symlink')).message, /read through symlink "l"/);
  });

  it('keeps long paths out of its messages', async () => {
    const long = `${'d'.repeat(250)}/`.repeat(8) + '..';
    const err = await refusedBy(await full((b) => b.mkfile(long)), 'path');
    assert.ok(err.message.length < 600, `message of ${err.message.length} chars`);
  });
});
