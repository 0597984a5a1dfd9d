/**
 * Compressed data by default (issue 12, item 3): on a `compress=zstd` source,
 * a default sync sends protocol 2 with `--compressed-data` (fewer stream bytes,
 * and the copy on an uncompressed destination stays compressed),
 * `--no-compressed-data` sends protocol 1; an SSH receiver that reports no
 * protocol 2 (the real server, started with `--no-compressed-data`) gets
 * protocol 1 and the run says so once; S3 stores and restores both versions
 * (`--verify` included), and a protocol 2 diff restored into a receiver that
 * reads protocol 1 only fails with one clear line. Real loop-mounted btrfs,
 * real sshd, moto_server.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, ListObjectsV2Command, CreateBucketCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { createS3Client } from '../../src/s3/s3-client.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { MOTO_ENV, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const { skip } = integrationPrereqs({ root: true, btrfs: true, sshd: true, moto: true });

/** Compressible file data per snapshot step (zstd shrinks it about tenfold). */
const TEXT_BYTES = 24 << 20;
const FALLBACK = /sending uncompressed \(protocol 1\)/g;

/** `n` bytes of numbered text lines, different for each `seed`. */
function text(n: number, seed: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < n; i++) {
    const line = `${seed} line ${i} of some compressible text for buttersink\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, n);
}

function store(dir: string): BtrfsStore {
  return new BtrfsStore(parseLocation(`${dir}/`) as BtrfsLocation);
}

/** Data bytes the filesystem has allocated on disk (compressed extents count compressed). */
async function dataUsed(mnt: string): Promise<number> {
  await execa('btrfs', ['filesystem', 'sync', mnt]);
  const { stdout } = await execa('btrfs', ['filesystem', 'df', '-b', mnt]);
  const m = /^Data, \w+: total=\d+, used=(\d+)$/m.exec(stdout);
  assert.ok(m, stdout);
  return Number(m[1]);
}

async function assertSameSnapshot(src: string, dst: string): Promise<void> {
  const s = await subvolumeShow(src);
  const d = await subvolumeShow(dst);
  assert.equal(d.readOnly, true, `${dst} is read-only`);
  assert.equal(d.receivedUuid, s.receivedUuid ?? s.uuid, `${dst} received UUID`);
  assert.equal(await treeDigest(dst), await treeDigest(src), `${dst} content equals ${src}`);
}

describe('compressed data (send protocol 2)', { skip }, () => {
  let source: BtrfsFs;
  let snaps: string;
  let sshd: Sshd;
  let moto: Moto;
  let client: S3Client;
  let restoreEnv: () => void;
  const fresh: BtrfsFs[] = [];
  /** A new uncompressed filesystem with an empty `snaps` directory; returns that directory. */
  const destination = async (): Promise<{ mnt: string; dir: string }> => {
    const fs = await createBtrfs({ size: 384 << 20 });
    fresh.push(fs);
    await mkdir(join(fs.mnt, 'snaps'));
    return { mnt: fs.mnt, dir: join(fs.mnt, 'snaps') };
  };
  const cli = (args: string[]) =>
    runCli(
      ['--endpoint-url', moto.endpoint, '--remote-command', sshd.remoteCommand, ...args],
      'buttersink',
      {
        env: { ...MOTO_ENV, HOME: sshd.home, SSH_AUTH_SOCK: '' },
      },
    );

  before(async () => {
    restoreEnv = useMotoEnv();
    [source, sshd, moto] = await Promise.all([
      createBtrfs({ size: 512 << 20, mountOptions: ['compress=zstd'] }),
      startSshd(),
      startMoto(),
    ]);
    client = createS3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: 'cdata' }));
    const vol = await subvolume(join(source.mnt, 'vol'));
    snaps = join(source.mnt, 'snaps');
    await mkdir(snaps);
    for (let step = 0; step < 2; step++) {
      await makeTree(vol, step, { bigMiB: 1 });
      await writeFile(join(vol, `text-${step}.txt`), text(TEXT_BYTES, step));
      await snapshot(vol, join(snaps, `s${step}`));
    }
  });
  after(async () => {
    restoreEnv?.();
    for (const fs of fresh) await fs.cleanup();
  });

  it('a default sync sends protocol 2 and the copy stays compressed; --no-compressed-data sends protocol 1', async () => {
    const v2 = await destination();
    const v1 = await destination();
    const r2 = await sync(store(snaps), store(v2.dir));
    const r1 = await sync(store(snaps), store(v1.dir), { compressedData: false });
    const bytes = (r: typeof r2) => r.transferred.reduce((n, d) => n + d.bytes, 0);
    for (const name of ['s0', 's1']) {
      await assertSameSnapshot(join(snaps, name), join(v2.dir, name));
      await assertSameSnapshot(join(snaps, name), join(v1.dir, name));
    }
    // Two text files of 24 MiB: protocol 1 carries them whole, protocol 2 as zstd extents.
    assert.ok(bytes(r1) > 2 * TEXT_BYTES, `protocol 1 stream bytes ${bytes(r1)}`);
    assert.ok(bytes(r2) < bytes(r1) / 3, `protocol 2 ${bytes(r2)} vs protocol 1 ${bytes(r1)}`);
    // The destinations are mounted without compression: only encoded writes land compressed.
    const [used2, used1] = [await dataUsed(v2.mnt), await dataUsed(v1.mnt)];
    assert.ok(used1 > 2 * TEXT_BYTES, `protocol 1 copy uses ${used1}`);
    assert.ok(used2 < used1 / 3, `protocol 2 copy uses ${used2} vs ${used1}`);
  });

  it('the CLI sends --compressed-data by default, not with --no-compressed-data, silently', async () => {
    const a = await destination();
    const b = await destination();
    const logA = join(a.mnt, 'a.log');
    const logB = join(b.mnt, 'b.log');
    const ra = await cli(['-q', '-l', logA, `${snaps}/`, `${a.dir}/`]);
    const rb = await cli(['-q', '-l', logB, '--no-compressed-data', `${snaps}/`, `${b.dir}/`]);
    assert.equal(ra.exitCode, 0, ra.stderr);
    assert.equal(rb.exitCode, 0, rb.stderr);
    assert.doesNotMatch(ra.stderr + rb.stderr, FALLBACK);
    const sends = async (log: string) =>
      (await execa('grep', ['"send"', log], { reject: false })).stdout
        .split('\n')
        .filter((l) => /"-q"/.test(l));
    const sa = await sends(logA);
    const sb = await sends(logB);
    assert.equal(sa.length, 2, sa.join('\n'));
    for (const l of sa) assert.match(l, /"--proto","2","--compressed-data"/);
    assert.equal(sb.length, 2, sb.join('\n'));
    for (const l of sb) assert.doesNotMatch(l, /--compressed-data/);
    await assertSameSnapshot(join(snaps, 's1'), join(a.dir, 's1'));
    await assertSameSnapshot(join(snaps, 's1'), join(b.dir, 's1'));
  });

  it('into and out of SSH: protocol 2 both ways with a current server', async () => {
    const there = await destination();
    const back = await destination();
    const ssh = `ssh://${sshd.alias}${there.dir}/`;
    const out = await cli(['-q', `${snaps}/`, ssh]);
    assert.equal(out.exitCode, 0, out.stderr);
    const pulled = await cli(['-q', ssh, `${back.dir}/`]);
    assert.equal(pulled.exitCode, 0, pulled.stderr);
    assert.doesNotMatch(out.stderr + pulled.stderr, FALLBACK);
    for (const name of ['s0', 's1']) {
      await assertSameSnapshot(join(snaps, name), join(there.dir, name));
      await assertSameSnapshot(join(snaps, name), join(back.dir, name));
    }
    assert.ok((await dataUsed(there.mnt)) < TEXT_BYTES, 'the SSH copy stays compressed');
    assert.ok((await dataUsed(back.mnt)) < TEXT_BYTES, 'the copy pulled over SSH stays compressed');
  });

  it('an SSH receiver without protocol 2 gets protocol 1, and the run says so once', async () => {
    const there = await destination();
    const r = await runCli(
      [
        '--remote-command',
        `${sshd.remoteCommand} --no-compressed-data`,
        `${snaps}/`,
        `ssh://${sshd.alias}${there.dir}/`,
      ],
      'buttersink',
      { env: { HOME: sshd.home, SSH_AUTH_SOCK: '' } },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const said = r.stderr.match(FALLBACK) ?? [];
    assert.equal(said.length, 1, r.stderr);
    assert.match(
      r.stderr,
      /^buttersink: warning: sending uncompressed \(protocol 1\): ssh:\/\/bstest\/.*: turned off there \(--no-compressed-data\)$/m,
    );
    for (const name of ['s0', 's1'])
      await assertSameSnapshot(join(snaps, name), join(there.dir, name));
    assert.ok((await dataUsed(there.mnt)) > 2 * TEXT_BYTES, 'protocol 1 arrived uncompressed');
  });

  for (const mode of ['protocol 2', 'protocol 1'] as const) {
    it(`S3 round trip, ${mode}: stored with its version, --verify passes, restored exactly`, async () => {
      const prefix = mode === 'protocol 2' ? 'v2' : 'v1';
      const flags = mode === 'protocol 2' ? [] : ['--no-compressed-data'];
      const up = await cli(['-q', ...flags, `${snaps}/`, `s3://cdata/${prefix}/`]);
      assert.equal(up.exitCode, 0, up.stderr);
      assert.doesNotMatch(up.stderr, FALLBACK);
      const listed = await client.send(
        new ListObjectsV2Command({ Bucket: 'cdata', Prefix: `${prefix}/` }),
      );
      const diffs = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => /_/.test(k));
      assert.equal(diffs.length, 2, diffs.join(', '));
      for (const key of diffs) {
        const head = await client.send(new HeadObjectCommand({ Bucket: 'cdata', Key: key }));
        assert.equal(
          head.Metadata?.['buttersink-stream-version'],
          prefix === 'v2' ? '2' : '1',
          key,
        );
      }
      const verify = await cli(['--verify', `s3://cdata/${prefix}/`]);
      assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
      const back = await destination();
      const down = await cli(['-q', `s3://cdata/${prefix}/`, `${back.dir}/`]);
      assert.equal(down.exitCode, 0, down.stderr);
      for (const name of ['s0', 's1'])
        await assertSameSnapshot(join(snaps, name), join(back.dir, name));
      const used = await dataUsed(back.mnt);
      if (mode === 'protocol 2') assert.ok(used < TEXT_BYTES, `restored copy uses ${used}`);
      else assert.ok(used > 2 * TEXT_BYTES, `restored copy uses ${used}`);
    });
  }

  it('a protocol 2 diff from S3 into a receiver that reads protocol 1 only fails with one clear line', async () => {
    const up = await cli(['-q', `${snaps}/s0`, 's3://cdata/restore/']);
    assert.equal(up.exitCode, 0, up.stderr);
    const there = await destination();
    const r = await runCli(
      [
        '--endpoint-url',
        moto.endpoint,
        '--remote-command',
        `${sshd.remoteCommand} --no-compressed-data`,
        's3://cdata/restore/',
        `ssh://${sshd.alias}${there.dir}/`,
      ],
      'buttersink',
      { env: { ...MOTO_ENV, HOME: sshd.home, SSH_AUTH_SOCK: '' } },
    );
    assert.equal(r.exitCode === 0, false, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /s0: this diff is a protocol 2 send stream \(a diff sent with --compressed-data\), but btrfs receive at ssh:\/\/bstest reads protocol 1 only \(turned off there \(--no-compressed-data\)\); restore it with btrfs-progs 6\.0 or later on the receiving host/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const left = await execa('btrfs', ['subvolume', 'list', '-o', there.dir], { reject: false });
    assert.equal(left.stdout.trim(), '', 'nothing received, not even a partial');
  });
});
