/**
 * The guards between a send stream and a committed snapshot, each proven on
 * real btrfs by feeding it the damage it exists to catch:
 * - `sync()` verifies every command before `btrfs receive` reads it: one
 *   flipped byte in a WRITE command's data fails the run with our
 *   StreamCorruptError, and the receiver never gets to report a CRC mismatch;
 * - BtrfsStore renames `<name>.part` to its final name only when the received
 *   subvolume carries the announced UUID and is read-only.
 * `npm run mutate:guards` deletes each guard and checks these tests fail.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { StoreError, StreamCorruptError, findCause } from '../../src/errors.js';
import { setLogger } from '../../src/log.js';
import { uuidRewrite } from '../../src/stages/uuid-rewrite.js';
import { runPipeline } from '../../src/streams/pipeline.js';
import { sourceStage } from '../../src/streams/stage.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import { byteInWriteData, sendingBytes } from '../fixtures/corrupt-stream.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

function store(dir: string): BtrfsStore {
  return new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
}

/** Everything `btrfs receive` printed, from the debug channel, while `fn` ran. */
async function receiverLines<T>(fn: () => Promise<T>): Promise<{ lines: string[]; result: T }> {
  const lines: string[] = [];
  const prev = setLogger({
    warn: () => undefined,
    debug: (message, details) => {
      if (message === 'btrfs receive') lines.push(String((details as { line?: unknown }).line));
    },
  });
  try {
    return { lines, result: await fn() };
  } finally {
    setLogger(prev);
  }
}

describe('guards between a send stream and a committed snapshot', { skip }, () => {
  let fs: BtrfsFs;
  let snaps: string;
  before(async () => {
    fs = await createBtrfs();
    const live = await subvolume(join(fs.mnt, 'live'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(snaps);
    await makeTree(live, 0, { bigMiB: 4 });
    await snapshot(live, join(snaps, 'a'));
  });
  after(async () => fs?.cleanup());

  it('sync() stops a stream with one flipped data byte with StreamCorruptError before btrfs receive sees it', async () => {
    const sent = await execa('btrfs', ['send', '-q', join(snaps, 'a')], { encoding: 'buffer' });
    const stream = Buffer.from(sent.stdout);
    const at = byteInWriteData(stream);
    const bad = Buffer.from(stream);
    bad[at]! ^= 0x10;
    const dest = join(fs.mnt, 'corrupt-sync');
    await mkdir(dest);

    // With every stage (a btrfs → btrfs sync otherwise leaves stream-verify to btrfs receive).
    const { lines, result } = await receiverLines(() =>
      sync(sendingBytes(store(snaps), bad), store(dest), { noFuse: true }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    const corrupt = findCause(result, StreamCorruptError);
    assert.ok(corrupt, `our own error, got: ${String(result)}`);
    assert.ok(corrupt.offset <= at, `the bad command (at ${corrupt.offset}) holds byte ${at}`);
    assert.ok(
      !lines.some((l) => /crc/i.test(l)),
      `btrfs receive never saw the bad command:\n${lines.join('\n')}`,
    );
    assert.equal(existsSync(join(dest, 'a')), false, 'nothing under the final name');

    // (The fused local path takes no bytes from send(): it joins this machine's own
    // btrfs send to btrfs receive, which checks every CRC itself; see fused-kill.test.ts.)

    // The same bytes unflipped go through: the failure was the flipped byte.
    const good = join(fs.mnt, 'good-sync');
    await mkdir(good);
    const done = await sync(sendingBytes(store(snaps), stream), store(good));
    assert.equal(done.transferred.length, 1);
    assert.equal((await subvolumeShow(join(good, 'a'))).readOnly, true);
  });

  it('BtrfsStore leaves a stream whose received UUID is not the announced one as .part, never under its name', async () => {
    const a = (await store(snaps).view('source')).volumes.find((v) => v.path === 'a')!;
    const dest = join(fs.mnt, 'wrong-uuid');
    await mkdir(dest);
    const receive = await store(dest).receive(a, null, { trustedSource: true });
    // A well-formed stream (CRCs recomputed) announcing another snapshot.
    const other = randomUUID();
    await assert.rejects(
      runPipeline([
        sourceStage(
          'send',
          execa('btrfs', ['send', '-q', join(snaps, 'a')], { buffer: false }).stdout,
        ),
        uuidRewrite({ target: { uuid: other } }),
        ...receive.transforms,
        receive.sink,
      ]),
      (e: unknown) => {
        assert.ok(e instanceof StoreError, String(e));
        assert.match(e.message, new RegExp(`received UUID ${other}, expected ${a.uuid}`));
        return true;
      },
    );
    assert.deepEqual(await readdir(dest), ['a.part'], 'only the .part is left');
    assert.equal((await subvolumeShow(join(dest, 'a.part'))).receivedUuid, other);
    assert.deepEqual((await store(dest).view('dest')).volumes, [], 'no snapshot is listed');
  });
});
