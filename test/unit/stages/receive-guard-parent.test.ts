// receiveGuard's lookups in the parent copy on disk (`parentRoot`): what a
// name the parent does not hold, or cannot hold, resolves to.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamRefusedError } from '../../../src/errors.js';
import { receiveGuard } from '../../../src/stages/receive-guard.js';
import { StreamBuilder } from '../../fixtures/hostile-streams.js';
import { runThrough, runThroughCatching } from '../../fixtures/streams/index.js';

const TARGET = '11111111-2222-4333-8444-555555555555';
const PARENT = '66666666-7777-4888-8999-aaaaaaaaaaaa';
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'guard-parent-'));
  mkdirSync(join(dir, 'parent/sub'), { recursive: true });
  writeFileSync(join(dir, 'parent/file'), 'x');
  symlinkSync('/tmp', join(dir, 'parent/lnk'));
  writeFileSync(join(dir, 'plain-file'), 'x');
  symlinkSync('loop', join(dir, 'loop'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** An incremental stream from PARENT: SNAPSHOT, `body`, END. */
async function incremental(body: (b: StreamBuilder) => StreamBuilder): Promise<Buffer> {
  const b = await StreamBuilder.create();
  b.snapshot('snap', TARGET, PARENT);
  return body(b).end().bytes();
}

/** Runs `bytes` through a guard on `parentRoot`; returns the output and error. */
async function through(bytes: Buffer, parentRoot: string) {
  return runThroughCatching(
    [bytes],
    receiveGuard({ target: TARGET, parent: PARENT, parentRoot }).stream,
  );
}

describe('receiveGuard parent lookup', () => {
  it('names the parent does not hold are new: created and written freely', async () => {
    const bytes = await incremental((b) =>
      b.mkfile('new').write('new', 'x').mkdir('newdir').mkfile('newdir/f').write('newdir/f', 'y'),
    );
    const { bytes: out, error } = await through(bytes, join(dir, 'parent'));
    assert.equal(error, undefined);
    assert.ok(out.equals(bytes));
  });

  it('a name too long for the filesystem is not in the parent (ENAMETOOLONG)', async () => {
    const long = 'n'.repeat(300);
    const bytes = await incremental((b) => b.mkfile(long).write(long, 'x'));
    const { error } = await through(bytes, join(dir, 'parent'));
    assert.equal(error, undefined);
  });

  it('a parent root that is a file (ENOTDIR) or a symlink loop (ELOOP) holds nothing', async () => {
    const bytes = await incremental((b) => b.mkfile('a').write('a', 'x').chmod('file', 0o644));
    for (const root of [join(dir, 'plain-file'), join(dir, 'loop')]) {
      const { error } = await through(bytes, root);
      assert.equal(error, undefined, root);
    }
  });

  it('any other lookup failure fails the stream instead of counting the name as absent', async () => {
    const bytes = await incremental((b) => b.write('lnk', 'x'));
    const { bytes: out, error } = await through(bytes, join(dir, 'par\0ent'));
    assert.ok(error instanceof Error, 'stream accepted');
    assert.ok(!(error instanceof StreamRefusedError));
    assert.equal((error as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_VALUE');
    assert.ok(out.length < bytes.length);
  });

  it('trailing slashes on the parent root change nothing: its symlinks are still found', async () => {
    const bytes = await incremental((b) => b.write('lnk', 'x'));
    const { error } = await through(bytes, `${join(dir, 'parent')}///`);
    assert.ok(error instanceof StreamRefusedError, 'write through an inherited symlink accepted');
    assert.equal(error.rule, 'symlink');
    const ok = await incremental((b) => b.write('file', 'x').mkfile('sub/g').write('sub/g', 'y'));
    await runThrough(
      [ok],
      receiveGuard({ target: TARGET, parent: PARENT, parentRoot: `${join(dir, 'parent')}/` })
        .stream,
    );
  });
});
