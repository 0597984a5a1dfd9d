/**
 * `--keep` on real stores, through the CLI: btrfs → btrfs deletes exactly the
 * snapshots the policy drops at the destination and leaves the source alone;
 * btrfs → S3 (moto_server) re-bases and trashes so that every kept snapshot
 * still restores (synced back to a fresh btrfs, same tree digest), chains stay
 * within --max-chain, and what went is under trash/.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/s3/s3-client.js';
import { createBtrfs, subvolume } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { MOTO_ENV, startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { day, digests, lines, sorted, takeSnapshots } from '../fixtures/retention.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const MiB = 1024 * 1024;

describe(
  '--keep on btrfs → btrfs',
  { skip: integrationPrereqs({ root: true, btrfs: true }).skip },
  () => {
    // Every third day from Monday 2024-01-01 to Tuesday 2024-02-27.
    const dates = Array.from({ length: 20 }, (_, i) => day(3 * i));
    let src: string;
    let dst: string;
    let vol: string;

    before(async () => {
      const a = await createBtrfs({ size: 256 * MiB });
      const b = await createBtrfs({ size: 256 * MiB });
      vol = await subvolume(join(a.mnt, 'vol'));
      src = join(a.mnt, 'snaps');
      dst = join(b.mnt, 'backup');
      await mkdir(src);
      await mkdir(dst);
      await takeSnapshots(vol, src, dates);
    });

    it('-n says what it would delete and changes nothing; the real run deletes exactly that', async () => {
      const keep = ['--keep', 'latest=3,weekly=4,monthly=2'];
      const before = await digests(src, await sorted(src));
      const plain = await runCli(['-q', `${src}/`, `${dst}/`]);
      assert.equal(plain.exitCode, 0, plain.stderr);
      assert.equal((await sorted(dst)).length, 20);
      const dry = await runCli(['-n', '-q', ...keep, `${src}/`, `${dst}/`]);
      assert.equal(dry.exitCode, 0, dry.stderr);
      assert.equal((await sorted(dst)).length, 20, 'a dry run changes nothing');
      const wouldDelete = lines(dry.stdout, 'would delete ').map((l) => l.slice(13));

      const run = await runCli(['-q', ...keep, `${src}/`, `${dst}/`]);
      assert.equal(run.exitCode, 0, run.stderr);
      // latest 3: Feb 21, 24, 27; weeks from Feb 5: Feb 6, 12, 21, 27; months: Jan 1, Feb 3.
      const kept = ['01-01', '02-03', '02-06', '02-12', '02-21', '02-24', '02-27'].map(
        (d) => `home-2024-${d}`,
      );
      assert.deepEqual(await sorted(dst), kept);
      const deleted = lines(run.stdout, 'deleted ').map((l) => l.slice(8));
      assert.equal(deleted.length, 13);
      assert.deepEqual(deleted.sort(), wouldDelete.sort(), '-n said exactly what the run did');
      assert.deepEqual(await digests(src, await sorted(src)), before, 'source untouched');
      for (const k of kept) {
        assert.equal(await treeDigest(join(dst, k)), before.get(k), `${k} is intact`);
      }
    });

    it('a later run sends only the new snapshot, not the thinned ones, and thins what then falls out', async () => {
      await takeSnapshots(vol, src, ['2024-03-01']);
      const run = await runCli([
        '-q',
        '--keep',
        'latest=3,weekly=4,monthly=2',
        `${src}/`,
        `${dst}/`,
      ]);
      assert.equal(run.exitCode, 0, run.stderr);
      assert.equal(lines(run.stdout, 'sent ').length, 1, run.stdout);
      assert.match(run.stdout, /^sent .*home-2024-03-01/m);
      assert.match(run.stdout, /^retention: not sending 13 snapshot\(s\) the policy would drop$/m);
      assert.deepEqual(lines(run.stdout, 'deleted '), ['deleted home-2024-01-01']);
      const kept = ['02-03', '02-06', '02-12', '02-21', '02-24', '02-27', '03-01'];
      assert.deepEqual(
        await sorted(dst),
        kept.map((d) => `home-2024-${d}`),
      );
      assert.equal((await sorted(src)).length, 21, 'source untouched');
    });
  },
);

interface StoredKey {
  key: string;
  path: string;
  to: string;
  from: string | null;
}

async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

function diffsOf(keys: readonly string[], prefix: string): StoredKey[] {
  return keys.flatMap((key) => {
    const m = new RegExp(`^${prefix}/(.+)/([-0-9a-f]+)_([-0-9a-f]+|None)$`).exec(key);
    return m ? [{ key, path: m[1]!, to: m[2]!, from: m[3] === 'None' ? null : m[3]! }] : [];
  });
}

/** Shortest restore chain (in diffs) of each snapshot from what is stored; absent: none. */
function chainLengths(diffs: readonly StoredKey[]): Map<string, number> {
  const length = new Map<string, number>();
  for (let changed = true; changed;) {
    changed = false;
    for (const d of diffs) {
      const base = d.from === null ? 0 : length.get(d.from);
      if (base !== undefined && (length.get(d.to) ?? Infinity) > base + 1) {
        length.set(d.to, base + 1);
        changed = true;
      }
    }
  }
  return length;
}

describe(
  '--keep on btrfs → S3',
  { skip: integrationPrereqs({ root: true, btrfs: true, moto: true }).skip },
  () => {
    let moto: Moto;
    let client: S3Client;
    let restoreEnv: () => void;
    let src: string;
    let uuids: Map<string, string>;
    const bucket = 'bkt-retention';
    const dates = Array.from({ length: 12 }, (_, i) => day(i));

    before(async () => {
      restoreEnv = useMotoEnv();
      moto = await startMoto();
      client = createS3Client({ endpoint: moto.endpoint });
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const a = await createBtrfs({ size: 256 * MiB });
      const vol = await subvolume(join(a.mnt, 'vol'));
      src = join(a.mnt, 'snaps');
      await mkdir(src);
      uuids = await takeSnapshots(vol, src, dates);
    });

    after(async () => {
      client?.destroy();
      await moto?.stop();
      restoreEnv?.();
    });

    const cli = (args: string[]) =>
      runCli(['-q', '--endpoint-url', moto.endpoint, ...args], 'buttersink', {
        env: { ...process.env, ...MOTO_ENV } as Record<string, string>,
      });

    it('after thinning every kept snapshot restores, chains are bounded, the rest is in trash/', async () => {
      const up = await cli([`${src}/`, `s3://${bucket}/b/`]);
      assert.equal(up.exitCode, 0, up.stderr);
      const stored = await listKeys(client, bucket, '');
      const keep = ['--keep', 'latest=2,weekly=1', '--max-chain', '2'];
      // Kept: Jan 8 (first of the newest week), Jan 11 and 12 (latest 2).
      const kept = ['2024-01-08', '2024-01-11', '2024-01-12'].map((d) => uuids.get(`home-${d}`)!);
      const longBefore = kept.filter(
        (u) => (chainLengths(diffsOf(stored, 'b')).get(u) ?? Infinity) > 2,
      );
      assert.ok(longBefore.length > 0, `the upload left a chain to re-base:\n${stored.join('\n')}`);

      const dry = await cli(['-n', ...keep, `${src}/`, `s3://${bucket}/b/`]);
      assert.equal(dry.exitCode, 0, dry.stderr);
      assert.deepEqual(await listKeys(client, bucket, ''), stored, 'a dry run changes nothing');
      assert.ok(lines(dry.stdout, 'would trash ').length > 0, dry.stdout);

      const run = await cli([...keep, `${src}/`, `s3://${bucket}/b/`]);
      assert.equal(run.exitCode, 0, run.stderr);
      const after = await listKeys(client, bucket, '');
      const remaining = diffsOf(after, 'b');
      const trashed = diffsOf(
        after.filter((k) => k.startsWith('trash/')).map((k) => k.slice(6)),
        'b',
      );
      const what = `stored before:\n${stored.join('\n')}\nafter:\n${after.join('\n')}\n${run.stdout}`;
      const lengths = chainLengths(remaining);
      for (const u of kept) {
        assert.ok(
          (lengths.get(u) ?? Infinity) <= 2,
          `kept ${u} restorable within 2 diffs\n${what}`,
        );
      }
      assert.ok(trashed.length > 0, `something was trashed\n${what}`);
      assert.equal(lines(run.stdout, 're-based ').length, longBefore.length, what);
      assert.equal(lines(dry.stdout, 'would re-base ').length, longBefore.length, dry.stdout);
      const remainingKeys = new Set(remaining.map((d) => d.key));
      for (const t of trashed) assert.ok(!remainingKeys.has(t.key), `${t.key} moved, not copied`);
      assert.deepEqual(
        [...remaining, ...trashed].map((d) => d.key).sort(),
        diffsOf(stored, 'b')
          .map((d) => d.key)
          .concat(remaining.filter((d) => !stored.includes(d.key)).map((d) => d.key))
          .sort(),
        `every diff is either still there, new (a re-base) or in trash/\n${what}`,
      );
      // Nothing idle: every remaining diff is on the shortest chain of a kept snapshot.
      const byTo = new Map<string, StoredKey[]>();
      for (const d of remaining) byTo.set(d.to, [...(byTo.get(d.to) ?? []), d]);
      const used = new Set<string>();
      for (const u of kept) {
        for (let at: string | null = u; at !== null;) {
          const want = lengths.get(at);
          const best: StoredKey | undefined = (byTo.get(at) ?? []).find(
            (d) => (d.from === null ? 0 : (lengths.get(d.from) ?? Infinity)) + 1 === want,
          );
          if (!best) break;
          used.add(best.key);
          at = best.from;
        }
      }
      assert.deepEqual([...used].sort(), [...remainingKeys].sort(), `no idle diff left\n${what}`);
      assert.equal((await sorted(src)).length, 12, 'source untouched');

      // Restore everything the bucket still has into a fresh filesystem and compare.
      const b = await createBtrfs({ size: 256 * MiB });
      const restore = join(b.mnt, 'restore');
      await mkdir(restore);
      const down = await cli([`s3://${bucket}/b/`, `${restore}/`]);
      assert.equal(down.exitCode, 0, down.stderr);
      for (const d of ['2024-01-08', '2024-01-11', '2024-01-12']) {
        const name = `home-${d}`;
        assert.equal(
          await treeDigest(join(restore, name)),
          await treeDigest(join(src, name)),
          `${name} restored identical`,
        );
      }
      const restored = await sorted(restore);
      for (const d of ['01', '02', '03', '04', '05', '06', '07']) {
        assert.ok(!restored.includes(`home-2024-01-${d}`), `home-2024-01-${d} was dropped`);
      }
    });
  },
);
