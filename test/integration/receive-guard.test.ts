/**
 * Hostile send streams through the receive paths, on real btrfs, moto_server
 * and sshd: a restore from a bucket someone else can write, and a client of
 * `--server --mode a` pushing. Every case keeps a canary directory outside the
 * destination (and a subvolume outside it, and the parent snapshot) and checks
 * that nothing changed there, that the refusal is one line naming the
 * snapshot and the rule, and that nothing but a partial is left. Also: the
 * decoy parent (two copies with the same received UUID on one filesystem),
 * locally and over SSH.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { RefusedDiffsError, StreamCorruptError, findCause } from '../../src/errors.js';
import { setLogger } from '../../src/log.js';
import { btrfsReceive } from '../../src/stages/btrfs-receive.js';
import { runPipeline } from '../../src/streams/pipeline.js';
import { sourceStage } from '../../src/streams/stage.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import type { Store } from '../../src/stores/store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, S3Location, SshLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { execa } from 'execa';
import {
  createBtrfs,
  deterministicBytes,
  makeTree,
  snapshot,
  subvolume,
} from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { HOSTILE, StreamBuilder } from '../fixtures/hostile-streams.js';
import type { HostileContext } from '../fixtures/hostile-streams.js';
import { startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true, moto: true });

describe('receive guard on every receive path', { skip }, () => {
  let fs: BtrfsFs;
  let moto: Moto;
  let sshd: Sshd;
  let client: S3Client;
  let restoreEnv: () => void;
  let restoreLogger: () => void;
  const warnings: string[] = [];
  const stores: Store[] = [];
  let canary: string;
  let outsideUuid: string;
  /** Digests of what must never change: canary, outside subvolume. */
  let untouched: () => Promise<string[]>;
  let before0: string[];

  const local = (dir: string) => {
    const s = new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
    stores.push(s);
    return s;
  };
  const ssh = (dir: string, mode: 'r' | 'a' | 'w') => {
    const s = new SshStore(parseLocation(`ssh://${sshd.alias}${dir}/`) as SshLocation, {
      home: sshd.home,
      agent: false,
      remoteCommand: sshd.remoteCommand,
      mode,
    });
    stores.push(s);
    return s;
  };
  const bytesSource = (bytes: Buffer) => sourceStage('hostile', Readable.from([bytes]));

  /** Makes `<dest>/p` (read-only, received UUID `uuid`) holding a symlink `lnk` to the canary. */
  const makeParent = async (dest: string, uuid: string) => {
    await mkdir(dest, { recursive: true });
    const stream = (await StreamBuilder.create())
      .subvol('p', uuid)
      .symlink('lnk', canary)
      .mkfile('file')
      .write('file', 'parent data')
      .end()
      .bytes();
    const store = local(dest);
    const stages = await store.receive({ uuid, path: 'p' }, null, {});
    await runPipeline([bytesSource(stream), ...stages.transforms, stages.sink]);
  };

  /** What is left under `dir`: names other than `keep` must be partials. */
  const onlyPartials = async (dir: string, keep: string[]) => {
    const names = await readdir(dir);
    for (const k of keep)
      assert.ok(names.includes(k), `${k} missing in ${dir}: ${names.join(', ')}`);
    const others = names.filter((n) => !keep.includes(n));
    assert.deepEqual(
      others.filter((n) => !n.endsWith('.part')),
      [],
      `non-partial names left in ${dir}`,
    );
  };

  before(async () => {
    const prev = setLogger({ warn: (w) => warnings.push(w.message), debug: () => undefined });
    restoreLogger = () => setLogger(prev);
    restoreEnv = useMotoEnv();
    [fs, moto, sshd] = await Promise.all([
      createBtrfs({ size: 768 << 20, label: 'guard' }),
      startMoto(),
      startSshd(),
    ]);
    client = createS3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: 'hostile' }));
    canary = join(fs.mnt, 'canary');
    await mkdir(join(canary, 'sub'), { recursive: true });
    await writeFile(join(canary, 'keep'), 'canary\n');
    const secret = await subvolume(join(fs.mnt, 'outside-vol'));
    await writeFile(join(secret, 'secret'), 'secret data\n'.repeat(1000));
    await mkdir(join(fs.mnt, 'outside'));
    await snapshot(secret, join(fs.mnt, 'outside', 'secret'));
    outsideUuid = (await subvolumeShow(join(fs.mnt, 'outside', 'secret'))).uuid!;
    untouched = async () => [await treeDigest(canary), await treeDigest(join(fs.mnt, 'outside'))];
    before0 = await untouched();
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    client?.destroy();
    restoreLogger?.();
    restoreEnv?.();
    await sshd?.stop();
    await moto?.stop();
    await fs?.cleanup();
  });

  it('restore from a bucket: every hostile diff skipped by its rule, the rest restored, canary untouched', async () => {
    const dest = join(fs.mnt, 's3dest');
    const parent = randomUUID();
    await makeParent(dest, parent);
    const parentDigest = await treeDigest(join(dest, 'p'));
    const ctx = (i: number): HostileContext => ({
      target: targets[i]!,
      name: `h${i}`,
      parent,
      canary,
      outsideUuid,
      parentSymlink: 'lnk',
    });
    const cases = HOSTILE.filter((c) => c.rule !== 'corrupt');
    const targets = cases.map(() => randomUUID());
    for (const [i, c] of cases.entries()) {
      const key = `pre/h${i}/${targets[i]}_${c.incremental ? parent : 'None'}`;
      await client.send(
        new PutObjectCommand({ Bucket: 'hostile', Key: key, Body: await c.build(ctx(i)) }),
      );
    }
    const okUuid = randomUUID();
    const ok = (await StreamBuilder.create())
      .subvol('ok', okUuid)
      .mkfile('f')
      .write('f', 'fine')
      .end()
      .bytes();
    await client.send(
      new PutObjectCommand({ Bucket: 'hostile', Key: `pre/ok/${okUuid}_None`, Body: ok }),
    );
    // A diff announcing a UUID this filesystem already has: received, with a warning naming it.
    const known = (await StreamBuilder.create()).subvol('known', outsideUuid).end().bytes();
    await client.send(
      new PutObjectCommand({
        Bucket: 'hostile',
        Key: `pre/known/${outsideUuid}_None`,
        Body: known,
      }),
    );
    const bucket = new S3Store(parseLocation('s3://hostile/pre/') as S3Location, {
      endpoint: moto.endpoint,
    });
    stores.push(bucket);
    warnings.length = 0;
    const err = await sync(bucket, local(dest)).then(
      () => assert.fail('sync succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RefusedDiffsError, String(err));
    // sync gives a restored stream the identity its key announces (uuid-rewrite of the
    // first command), so a stream claiming another UUID or parent is defused, not refused:
    // it becomes the announced snapshot, on the pinned parent inside the destination.
    const defused = new Set(['target-uuid', 'parent-uuid']);
    const refused = cases.filter((c) => !defused.has(c.rule));
    assert.equal(err.skipped.length, refused.length, `${err.message}\n${warnings.join('\n')}`);
    const kept = ['p', 'ok', 'known'];
    assert.ok(
      warnings.some((w) =>
        new RegExp(
          `^known: UUID ${outsideUuid} is already on this filesystem \\("outside/secret"\\)`,
        ).test(w),
      ),
      warnings.join('\n'),
    );
    for (const [i, c] of cases.entries()) {
      if (defused.has(c.rule)) {
        const show = await subvolumeShow(join(dest, `h${i}`));
        assert.equal(show.receivedUuid, targets[i], c.name);
        if (c.incremental) {
          assert.equal(show.parentUuid, (await subvolumeShow(join(dest, 'p'))).uuid, c.name);
        }
        kept.push(`h${i}`);
        continue;
      }
      const w = warnings.find((m) => m.includes(`/h${i}/`));
      assert.ok(w, `no warning for ${c.name}`);
      assert.match(w, new RegExp(`^skipping s3://hostile/pre/h${i}/\\S+ \\(rule ${c.rule}\\): `));
      assert.doesNotMatch(w, /\n/);
    }
    const okShow = await subvolumeShow(join(dest, 'ok'));
    assert.equal(okShow.receivedUuid, okUuid);
    assert.deepEqual(await untouched(), before0);
    assert.equal(await treeDigest(join(dest, 'p')), parentDigest);
    await onlyPartials(dest, kept);
  });

  it('restore from a bucket: a length field claiming 4 GiB fails as corrupt, nothing left complete', async () => {
    const dest = join(fs.mnt, 's3dest-corrupt');
    await mkdir(dest);
    const c = HOSTILE.find((x) => x.rule === 'corrupt')!;
    const target = randomUUID();
    const bytes = await c.build({
      target,
      name: 'big',
      parent: target,
      canary,
      outsideUuid,
      parentSymlink: 'lnk',
    });
    await client.send(
      new PutObjectCommand({ Bucket: 'hostile', Key: `big/big/${target}_None`, Body: bytes }),
    );
    const bucket = new S3Store(parseLocation('s3://hostile/big/') as S3Location, {
      endpoint: moto.endpoint,
    });
    stores.push(bucket);
    const before = process.memoryUsage().rss;
    const err = await sync(bucket, local(dest)).then(
      () => assert.fail('sync succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error && findCause(err, StreamCorruptError), String(err));
    assert.match(
      err.message,
      /^big: send stream corrupt at byte \d+: command 1 \(write\) claims 4294967295 payload bytes/,
    );
    assert.ok(process.memoryUsage().rss - before < 256 << 20);
    await onlyPartials(dest, []);
    assert.deepEqual(await untouched(), before0);
  });

  it('confinement alone (guard bypassed): btrfs receive -C keeps .., absolute paths and stream symlinks inside', async () => {
    const dest = join(fs.mnt, 'confined');
    await mkdir(dest);
    const escapes = HOSTILE.filter(
      (c) => !c.incremental && (c.rule === 'path' || c.rule === 'symlink'),
    );
    assert.ok(escapes.length >= 3);
    for (const [i, c] of escapes.entries()) {
      const ctx: HostileContext = {
        target: randomUUID(),
        name: `c${i}`,
        parent: randomUUID(),
        canary,
        outsideUuid,
        parentSymlink: 'lnk',
      };
      // Straight into btrfs receive: no guard, no rewrite.
      await runPipeline([bytesSource(await c.build(ctx)), btrfsReceive({ dir: dest })]).catch(
        () => undefined,
      );
    }
    assert.deepEqual(await untouched(), before0);
  });

  it('a subvolume name with a newline cannot forge a listing entry', async () => {
    const other = await createBtrfs({ size: 256 << 20 });
    const dir = other.mnt;
    const vol = await subvolume(join(dir, 'vol'));
    await snapshot(vol, join(dir, 'real'));
    // Made by hand (buttersink refuses such names): it reads as two `btrfs subvolume list` lines.
    const fakeUuid = '99999999-9999-4999-8999-999999999999';
    await snapshot(
      vol,
      join(
        dir,
        `n\nID 999 gen 9 cgen 9 top level 5 parent_uuid - received_uuid - uuid ${fakeUuid} path fake`,
      ),
    );
    warnings.length = 0;
    const view = await local(dir).view('source');
    assert.deepEqual(
      view.volumes.map((v) => v.path),
      ['real'],
    );
    assert.ok(!view.volumes.some((v) => v.uuid === fakeUuid));
    assert.ok(
      warnings.some((w) => /not where the listing says/.test(w)),
      warnings.join('\n'),
    );
  });

  it('push into --server --mode a: every hostile stream refused with its rule, canary untouched', async () => {
    const dest = join(fs.mnt, 'sshdest');
    const parent = randomUUID();
    await makeParent(dest, parent);
    const parentDigest = await treeDigest(join(dest, 'p'));
    for (const [i, c] of HOSTILE.entries()) {
      const target = randomUUID();
      const ctx: HostileContext = {
        target,
        name: `h${i}`,
        parent,
        canary,
        outsideUuid,
        parentSymlink: 'lnk',
      };
      const store = ssh(dest, 'a');
      const stages = await store.receive(
        { uuid: target, path: `h${i}` },
        c.incremental ? { uuid: parent, path: 'p' } : null,
      );
      const err = await runPipeline([
        bytesSource(await c.build(ctx)),
        ...stages.transforms,
        stages.sink,
      ]).then(
        () => assert.fail(`${c.name}: accepted`),
        (e: unknown) => e,
      );
      const message = err instanceof Error ? err.message : String(err);
      const want =
        c.rule === 'corrupt'
          ? new RegExp(`h${i}: send stream corrupt`)
          : new RegExp(`h${i}: send stream refused \\(${c.rule}\\)`);
      assert.match(message, want, c.name);
      assert.doesNotMatch(message, /\n/);
      await store.close();
    }
    // A target UUID that exists elsewhere on the filesystem, and a name with a newline, are refused up front.
    const theft = await ssh(dest, 'a')
      .receive({ uuid: outsideUuid, path: 'stolen' }, null)
      .then(
        () => assert.fail('accepted a known UUID'),
        (e: unknown) => e,
      );
    assert.match(String(theft), /already exists on this filesystem/);
    const named = await ssh(dest, 'a')
      .receive({ uuid: randomUUID(), path: 'n\nID 999 path x' }, null)
      .then(
        () => assert.fail('accepted a name with a newline'),
        (e: unknown) => e,
      );
    assert.match(String(named), /refusing|control/);
    assert.deepEqual(await untouched(), before0);
    assert.equal(await treeDigest(join(dest, 'p')), parentDigest);
    await onlyPartials(dest, ['p']);
    const listed = await ssh(dest, 'r').view('dest');
    assert.deepEqual(
      listed.volumes.map((v) => v.path),
      ['p'],
    );
  });

  for (const via of ['local', 'ssh'] as const) {
    it(`decoy parent (${via}): the incremental, and its clones from the parent, use the copy inside the destination`, async () => {
      const base = join(fs.mnt, `decoy-${via}`);
      await mkdir(base);
      // Over SSH the source lives on another filesystem: the server refuses a UUID its own has.
      const srcFs = via === 'ssh' ? await createBtrfs({ size: 512 << 20 }) : undefined;
      const srcBase = srcFs?.mnt ?? base;
      const vol = await subvolume(join(srcBase, 'vol'));
      await mkdir(join(srcBase, 'src'));
      await makeTree(vol, 0);
      await writeFile(join(vol, 'shared'), deterministicBytes(1 << 20, 'shared'));
      await snapshot(vol, join(srcBase, 'src', 's1'));
      await makeTree(vol, 1);
      // A reflinked copy of a file only s1 has: the incremental clones it from the parent.
      await execa('cp', ['--reflink=always', join(vol, 'shared'), join(vol, 'copy')]);
      await rm(join(vol, 'shared'));
      await snapshot(vol, join(srcBase, 'src', 's2'));
      const s1 = (await subvolumeShow(join(srcBase, 'src', 's1'))).uuid!;
      // The decoy: a subvolume with s1's UUID as received UUID but other content, made first.
      const decoy = join(base, 'decoy');
      await mkdir(decoy);
      const fake = (await StreamBuilder.create())
        .subvol('s1', s1)
        .mkfile('planted')
        .write('planted', 'decoy')
        .end()
        .bytes();
      const ds = await local(decoy).receive({ uuid: s1, path: 's1' }, null, {});
      await runPipeline([bytesSource(fake), ...ds.transforms, ds.sink]);
      const real = join(base, 'real');
      await mkdir(real);
      const dest = () => (via === 'local' ? local(real) : ssh(real, 'a'));
      if (via === 'ssh') {
        // The server takes no second subvolume with a UUID its filesystem knows (the decoy
        // has s1's): s1 arrives by a local restore, s2 through the server.
        const one = new BtrfsStore(parseLocation(join(srcBase, 'src', 's1')) as BtrfsLocation);
        await sync(one, local(real));
      }
      const done = await sync(local(join(srcBase, 'src')), dest());
      assert.deepEqual(
        done.transferred.map((t) => [t.transfer.to.path, t.transfer.from?.path ?? null]),
        via === 'ssh'
          ? [['s2', 's1']]
          : [
              ['s1', null],
              ['s2', 's1'],
            ],
      );
      const copy = await subvolumeShow(join(real, 's2'));
      assert.equal(copy.parentUuid, (await subvolumeShow(join(real, 's1'))).uuid);
      assert.equal(
        await treeDigest(join(real, 's2')),
        await treeDigest(join(srcBase, 'src', 's2')),
      );
      await srcFs?.cleanup();
    });
  }
});
