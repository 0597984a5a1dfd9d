/**
 * uuid-rewrite and stream-verify between a real `btrfs send` and a real
 * `btrfs receive`: the received subvolumes carry the rewritten identities, and
 * an incremental stream whose parent and CLONE sources were rewritten finds its
 * parent by the rewritten UUID.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile, open, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { streamVerify } from '../../src/stages/stream-verify.js';
import { uuidRewrite } from '../../src/stages/uuid-rewrite.js';
import type { UuidRewriteOptions } from '../../src/stages/uuid-rewrite.js';
import { createBtrfs, deterministicBytes } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';

async function show(path: string): Promise<Record<string, string>> {
  const { stdout } = await execa('btrfs', ['subvolume', 'show', path]);
  const fields: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^\s*([A-Za-z ]+):\s*(.*)$/.exec(line);
    if (m) fields[m[1]!.trim()] = m[2]!.trim();
  }
  return fields;
}

/** btrfs send args | uuid-rewrite | stream-verify | btrfs receive dir. */
async function transfer(args: string[], opts: UuidRewriteOptions, dir: string) {
  const rewrite = uuidRewrite(opts);
  const verify = streamVerify();
  const sender = execa('btrfs', ['send', '-q', ...args], { buffer: false });
  const receiver = execa('btrfs', ['receive', dir], {
    buffer: false,
    stdin: 'pipe',
    stdout: 'ignore',
  });
  await Promise.all([
    pipeline(sender.stdout, rewrite.stream, verify.stream, receiver.stdin),
    sender,
    receiver,
  ]);
  return { rewrite: await rewrite.result, verify: await verify.result };
}

describe(
  'uuidRewrite between btrfs send and receive',
  integrationPrereqs({ root: true, btrfs: true }),
  () => {
    let fs: BtrfsFs;
    let s1: string;
    let s2: string;
    let recv: string;

    before(async () => {
      fs = await createBtrfs({ size: 512 * 1024 * 1024 });
      const vol = join(fs.mnt, 'vol');
      await execa('btrfs', ['subvolume', 'create', vol]);
      await writeFile(join(vol, 'big.bin'), deterministicBytes(2 * 1024 * 1024, 'big'));
      await writeFile(join(vol, 'small.txt'), 'small\n');
      await execa('sync');
      s1 = join(fs.mnt, 's1');
      await execa('btrfs', ['subvolume', 'snapshot', '-r', vol, s1]);
      // A reflink copy of an extent the parent has: the incremental stream CLONEs from s1.
      await execa('cp', ['--reflink=always', join(vol, 'big.bin'), join(vol, 'copy.bin')]);
      const fh = await open(join(vol, 'big.bin'), 'r+');
      await fh.write(deterministicBytes(65536, 'over'), 0, 65536, 4096);
      await fh.close();
      await execa('sync');
      s2 = join(fs.mnt, 's2');
      await execa('btrfs', ['subvolume', 'snapshot', '-r', vol, s2]);
      recv = join(fs.mnt, 'recv');
      await mkdir(recv);
    });

    after(async () => {
      await fs?.cleanup();
    });

    it('a full stream is received with the rewritten UUID and generation', async () => {
      const r = await transfer([s1], { target: { uuid: A, ctransid: 100 } }, recv);
      assert.equal(r.rewrite.rewritten >= 1, true);
      assert.equal(r.verify.bytes, r.rewrite.bytes);
      const info = await show(join(recv, 's1'));
      assert.equal(info['Received UUID'], A);
    });

    it('an incremental stream finds its parent by the rewritten UUID; CLONEs follow it', async () => {
      const r = await transfer(
        ['-p', s1, s2],
        { target: { uuid: B, ctransid: 200 }, parent: { uuid: A, ctransid: 100 } },
        recv,
      );
      assert.ok(r.rewrite.clonesRewritten > 0, 'the stream had CLONEs from the parent');
      const info = await show(join(recv, 's2'));
      assert.equal(info['Received UUID'], B);
      for (const f of ['big.bin', 'copy.bin', 'small.txt']) {
        assert.ok((await readFile(join(recv, 's2', f))).equals(await readFile(join(s2, f))), f);
      }
    });
  },
);
