/**
 * The local btrfs store's own behaviour on real btrfs: listing (read-only
 * only, received UUIDs as identity, partials hidden), measured sizes written
 * to and read back from `.bs` files, the probe's fallback to a counting send,
 * and refusing to overwrite a foreign snapshot.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { setBtrfsCommand } from '../../src/btrfs/exec.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { StoreError, StreamCorruptError } from '../../src/errors.js';
import { streamVerify } from '../../src/stages/stream-verify.js';
import { runPipeline } from '../../src/streams/pipeline.js';
import { sourceStage } from '../../src/streams/stage.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true });

describe('BtrfsStore', { skip }, () => {
  let fs: BtrfsFs;
  let snaps: string;
  let store: BtrfsStore;
  before(async () => {
    fs = await createBtrfs();
    const live = await subvolume(join(fs.mnt, 'live'));
    snaps = join(fs.mnt, 'snaps');
    await mkdir(join(snaps, 'nested'), { recursive: true });
    await makeTree(live, 0, { bigMiB: 8 });
    await snapshot(live, join(snaps, 'a'));
    await makeTree(live, 1, { bigMiB: 8 });
    await snapshot(live, join(snaps, 'nested', 'b'));
    await subvolume(join(snaps, 'writable'));
    await subvolume(join(snaps, 'c.part'));
    store = new BtrfsStore(parseLocation(`${snaps}/`) as BtrfsLocation);
  });
  after(async () => fs?.cleanup());

  it('lists read-only snapshots at any depth, hides writable ones and partials', async () => {
    const view = await store.view('source');
    assert.deepEqual(view.volumes.map((v) => v.path).sort(), ['a', 'nested/b']);
    const partials = await store.listPartials();
    assert.deepEqual(
      partials.map((p) => p.where),
      [join(snaps, 'c.part')],
    );
  });

  it('measures with the --no-data probe, records it in .bs, and offers it as a measured diff', async () => {
    const view = await store.view('source');
    const [a, b] = [...view.volumes].sort((x, y) => x.path.localeCompare(y.path));
    const size = await store.measure(b!, a!);
    const real = await execa('bash', [
      '-c',
      `btrfs send -q -p '${join(snaps, 'a')}' '${join(snaps, 'nested', 'b')}' | wc -c`,
    ]);
    assert.equal(size, Number(real.stdout));
    const bs = await readFile(join(snaps, 'nested', 'b.bs'), 'utf8');
    assert.equal(bs, `${b!.uuid}\t${a!.uuid}\t${size}\n`);
    const again = await store.view('source');
    assert.deepEqual(
      again.diffs?.map((d) => [d.to, d.from, d.size, d.estimated]),
      [[b!.uuid, a!.uuid, size, false]],
    );
  });

  it('falls back to a counting send when btrfs send --no-data fails', async () => {
    const wrapper = join(fs.mnt, '..', 'btrfs-without-no-data');
    await writeFile(
      wrapper,
      '#!/bin/sh\nfor a in "$@"; do [ "$a" = --no-data ] && { echo "unknown option --no-data" >&2; exit 1; }; done\nexec btrfs "$@"\n',
    );
    await chmod(wrapper, 0o755);
    const previous = setBtrfsCommand([wrapper]);
    try {
      const view = await store.view('source');
      const a = view.volumes.find((v) => v.path === 'a')!;
      const size = await store.measure(a, null);
      const real = await execa('bash', ['-c', `btrfs send -q '${join(snaps, 'a')}' | wc -c`]);
      assert.equal(size, Number(real.stdout));
    } finally {
      setBtrfsCommand(previous);
    }
  });

  it('a corrupted stream fails with StreamCorruptError and leaves nothing under the final name', async () => {
    const view = await store.view('source');
    const a = view.volumes.find((v) => v.path === 'a')!;
    const stream = (await execa('btrfs', ['send', '-q', join(snaps, 'a')], { encoding: 'buffer' }))
      .stdout;
    stream[Math.floor(stream.length / 2)]! ^= 0x01;
    const destDir = join(fs.mnt, 'corrupt-dest');
    await mkdir(destDir);
    const dest = new BtrfsStore(parseLocation(`${destDir}/`) as BtrfsLocation);
    const receive = await dest.receive(a, null);
    await assert.rejects(
      runPipeline([
        sourceStage('corrupt', Readable.from([stream])),
        streamVerify(),
        ...receive.transforms,
        receive.sink,
      ]),
      StreamCorruptError,
    );
    assert.equal(existsSync(join(destDir, 'a')), false, 'nothing under the final name');
    const partials = await dest.listPartials();
    // The receiver is killed when the bad command is found, before or after it
    // created its subvolume: what is left is nothing, or exactly a.part.
    const left = await readdir(destDir);
    assert.ok(left.length === 0 || (left.length === 1 && left[0] === 'a.part'), left.join(', '));
    assert.deepEqual(
      partials.map((p) => p.where),
      left.map((e) => join(destDir, e)),
      'listPartials reports what is there',
    );
    await dest.deletePartials(partials);
    assert.deepEqual((await dest.view('dest')).volumes, []);
  });

  it('refuses to receive over an existing path that is not the snapshot', async () => {
    const view = await store.view('source');
    const a = view.volumes.find((v) => v.path === 'a')!;
    const other = new BtrfsStore(parseLocation(`${snaps}/`) as BtrfsLocation);
    await assert.rejects(
      other.receive({ ...a, uuid: '00000000-0000-0000-0000-000000000001' }, null),
      StoreError,
    );
    assert.equal((await subvolumeShow(join(snaps, 'a'))).uuid, a.uuid, 'untouched');
  });
});
