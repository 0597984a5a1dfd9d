/**
 * A pull from a compromised SSH host: `sync(SshStore, BtrfsStore)` where the
 * remote command is test/fixtures/hostile-server.ts, which speaks the real
 * protocol but answers `send` with the streams of test/fixtures/hostile-streams.ts.
 * Every hostile diff must be skipped with a DIFF_REFUSED warning naming it and
 * the guard's rule, the legit snapshot received, and nothing outside the
 * destination touched.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listFilesystemSubvolumes } from '../../src/btrfs/subvolume-list.js';
import { subvolumeShow } from '../../src/btrfs/subvolume-show.js';
import { RefusedDiffsError, StreamCorruptError, findCause } from '../../src/errors.js';
import { setLogger } from '../../src/log.js';
import type { Warning } from '../../src/log.js';
import { BtrfsStore } from '../../src/stores/btrfs/btrfs-store.js';
import { SshStore } from '../../src/stores/ssh/ssh-store.js';
import type { Store } from '../../src/stores/store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { BtrfsLocation, SshLocation } from '../../src/stores/uri.js';
import { sync } from '../../src/sync.js';
import { createBtrfs, deterministicBytes, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { HOSTILE } from '../fixtures/hostile-streams.js';
import type { HostilePlan, PlannedVolume } from '../fixtures/hostile-server.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';
import { repoRoot, startSshd } from '../fixtures/sshd.js';
import type { Sshd } from '../fixtures/sshd.js';
import { treeDigest } from '../fixtures/tree-digest.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true, sshd: true });

const LEGIT = '1e617000-0000-4000-8000-000000000001';

/** A case as this test runs it: the listed volume and the rule its refusal must name. */
interface Expected {
  readonly volume: PlannedVolume;
  readonly rule: string;
  readonly what: string;
}

/**
 * Rules the sync path never gets to apply: sync's uuid-rewrite (before the
 * guard) gives the stream's first SUBVOL/SNAPSHOT the announced UUID and
 * parent, so these streams arrive carrying exactly what was announced and are
 * received as ordinary (empty) snapshots of that identity. Asserted below:
 * received under the announced UUID, built on the destination's own copy of
 * the announced parent, never on or as the outside subvolume.
 */
const DEFUSED_BY_REWRITE = new Set(['parent-uuid', 'target-uuid']);

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/** Everything under `root` but `skip` (a top-level name): one digest line per top-level entry. */
async function outsideDigest(root: string, skip: string): Promise<string> {
  const out: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (name === skip) continue;
    out.push(`${name}:\n${await treeDigest(join(root, name)).catch((e) => `not a dir: ${e}`)}`);
  }
  return out.join('\n');
}

describe('a pull from a compromised SSH host', { skip: prereqs.skip }, () => {
  let sshd: Sshd;
  let fs: BtrfsFs;
  let dest: string;
  let canary: string;
  let outsideUuid: string;
  let workDir: string;
  const stores: Store[] = [];
  const warnings: Warning[] = [];
  let restoreLogger: (() => void) | undefined;

  /** Writes `plan` and returns an SshStore whose remote command serves it. */
  const hostileSource = async (label: string, plan: HostilePlan): Promise<SshStore> => {
    const planPath = join(workDir, `${label}.json`);
    await writeFile(planPath, JSON.stringify(plan, null, 2));
    const server = join(repoRoot, 'test/fixtures/hostile-server.ts');
    const s = new SshStore(parseLocation(`ssh://${sshd.alias}/srv/snapshots/`) as SshLocation, {
      home: sshd.home,
      agent: false,
      mode: 'r',
      remoteCommand: `cd ${repoRoot} && BUTTERSINK_HOSTILE_PLAN=${planPath} exec ${process.execPath} --import tsx ${server}`,
    });
    stores.push(s);
    return s;
  };
  const destStore = (): BtrfsStore => {
    const s = new BtrfsStore(parseLocation(`${dest}/`) as BtrfsLocation);
    stores.push(s);
    return s;
  };
  /** The server's request log: (op, to) pairs. */
  const served = async (label: string) =>
    (await readFile(join(workDir, `${label}.json.log`), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { op?: string; to?: string; from?: string | null });

  before(async () => {
    const prev = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
    restoreLogger = () => setLogger(prev);
    sshd = await startSshd();
    workDir = join(sshd.dir, 'hostile');
    await mkdir(workDir);
    fs = await createBtrfs({ size: 512 << 20, label: 'hostile pull' });
    dest = join(fs.mnt, 'dest');
    await mkdir(dest);
    canary = join(fs.mnt, 'canary');
    await mkdir(canary);
    await writeFile(join(canary, 'victim'), 'original victim\n');
    await writeFile(join(canary, 'keep.txt'), 'canary content\n');
    await mkdir(join(fs.mnt, 'outside'));
    const src = await subvolume(join(fs.mnt, 'outside', 'src'));
    await writeFile(join(src, 'secret'), deterministicBytes(16384, 'secret'));
    const secret = await snapshot(src, join(fs.mnt, 'outside', 'secret'));
    outsideUuid = (await subvolumeShow(secret)).uuid!;
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    restoreLogger?.();
    await sshd?.stop();
    await fs?.cleanup();
  });

  it('skips every hostile diff with its rule, receives the legit snapshot, touches nothing outside dest', async () => {
    // Every HOSTILE case but the 4 GiB length field (a StreamCorruptError fails the
    // whole run: see the next test); incremental ones on the legit snapshot.
    const all: Expected[] = HOSTILE.filter((c) => c.rule !== 'corrupt').map((c, i) => {
      const uuid = randomUUID();
      return {
        what: c.name,
        rule: c.rule,
        volume: {
          uuid,
          path: `h${String(i).padStart(2, '0')}-${slug(c.name)}`,
          gen: 100 + i,
          ...(c.incremental ? { parentUuid: LEGIT } : {}),
          stream: { kind: 'hostile', name: c.name, ...(c.incremental ? { parent: LEGIT } : {}) },
        },
      };
    });
    const expected = all.filter((e) => !DEFUSED_BY_REWRITE.has(e.rule));
    const defused = all.filter((e) => DEFUSED_BY_REWRITE.has(e.rule));
    assert.equal(defused.length, 2);
    // A lie in the listing itself: a snapshot path leaving the destination.
    expected.push({
      what: 'a listed path with ..',
      rule: 'path',
      volume: { uuid: randomUUID(), path: '../escaped', gen: 99, stream: { kind: 'legit' } },
    });
    const legit: PlannedVolume = { uuid: LEGIT, path: 'legit', gen: 10, stream: { kind: 'legit' } };
    const sizes: Record<string, number> = { [`${LEGIT}_None`]: 4096 };
    for (const { volume: v } of [...expected, ...defused]) {
      if (v.parentUuid) sizes[`${v.uuid}_${v.parentUuid}`] = 100;
      else sizes[`${v.uuid}_None`] = 4096;
    }
    const plan: HostilePlan = {
      canary,
      outsideUuid,
      volumes: [legit, ...[...expected, ...defused].map((e) => e.volume)],
      sizes,
    };

    const canaryBefore = await treeDigest(canary);
    const outsideBefore = await outsideDigest(fs.mnt, 'dest');
    const subvolsBefore = new Set((await listFilesystemSubvolumes(fs.mnt)).map((s) => s.fsPath));
    warnings.length = 0;

    const source = await hostileSource('pull', plan);
    const err = await sync(source, destStore()).then(
      () => assert.fail('sync resolved'),
      (e: unknown) => e,
    );
    const shown = warnings.map((w) => `${w.code}: ${w.message}`).join('\n');
    assert.ok(err instanceof RefusedDiffsError, `${String(err)}\nwarnings:\n${shown}`);

    // Each hostile snapshot: skipped, one DIFF_REFUSED warning naming it and its rule.
    assert.deepEqual(
      [...err.skipped].sort(),
      expected.map((e) => e.volume.path).sort(),
      `skipped\nwarnings:\n${shown}`,
    );
    const refused = warnings.filter((w) => w.code === 'DIFF_REFUSED');
    for (const e of expected) {
      const mine = refused.filter((w) => w.message.startsWith(`skipping ${e.volume.path} `));
      assert.equal(mine.length, 1, `${e.what}: one warning for ${e.volume.path}\n${shown}`);
      assert.match(
        mine[0]!.message,
        new RegExp(`\\(rule ${e.rule}\\)`),
        `${e.what}: ${mine[0]!.message}`,
      );
    }
    assert.equal(refused.length, expected.length, shown);
    assert.equal(
      err.transferred.length,
      1 + defused.length,
      'only the legit snapshot and the defused ones were transferred',
    );

    // The hostile server really served each hostile stream (the listed-path lie is
    // refused before any send), the incremental ones on the legit parent.
    const log = await served('pull');
    for (const e of [...expected, ...defused]) {
      const sends = log.filter((l) => l.op === 'send' && l.to === e.volume.uuid);
      if (e.volume.path.includes('..')) assert.equal(sends.length, 0, e.what);
      else {
        assert.equal(sends.length, 1, `${e.what} was sent`);
        assert.equal(sends[0]!.from ?? null, e.volume.parentUuid ?? null, `${e.what}: parent`);
      }
    }

    // The legit snapshot: received, read-only, with its UUID, intact.
    const show = await subvolumeShow(join(dest, 'legit'));
    assert.equal(show.readOnly, true);
    assert.equal(show.receivedUuid, LEGIT);
    assert.equal(await readFile(join(dest, 'legit', 'hello.txt'), 'utf8'), 'legit data\n');
    assert.equal(await readlink(join(dest, 'legit', 'lnk')), canary);

    // The defused ones: the announced identity, on the legit copy, empty.
    for (const e of defused) {
      const d = await subvolumeShow(join(dest, e.volume.path));
      assert.equal(d.readOnly, true, e.what);
      assert.equal(d.receivedUuid, e.volume.uuid, e.what);
      if (e.volume.parentUuid) assert.equal(d.parentUuid, show.uuid, `${e.what}: built on legit`);
      else assert.equal(d.parentUuid, undefined, e.what);
      const entries = await readdir(join(dest, e.volume.path));
      assert.deepEqual(
        entries.sort(),
        e.volume.parentUuid ? ['hello.txt', 'lnk'] : [],
        `${e.what}: content`,
      );
    }
    for (const s of await listFilesystemSubvolumes(fs.mnt)) {
      assert.notEqual(s.receivedUuid, outsideUuid, `${s.fsPath} received as the outside UUID`);
    }
    const finals = new Set(['legit', ...defused.map((e) => e.volume.path)]);

    // Under dest: the legit (and defused) snapshots and at most partials; no refused one by its name.
    const names = await readdir(dest);
    for (const n of names) {
      assert.ok(
        finals.has(n) || n.endsWith('.part'),
        `unexpected ${n} in dest: ${names.join(', ')}`,
      );
    }
    // Nothing outside dest changed: the canary, the outside subvolume, the rest of the fs.
    assert.equal(await treeDigest(canary), canaryBefore, 'canary changed');
    assert.equal(
      await outsideDigest(fs.mnt, 'dest'),
      outsideBefore,
      'something changed outside dest',
    );
    const destPath = dest.slice(fs.mnt.length + 1);
    for (const s of await listFilesystemSubvolumes(fs.mnt)) {
      if (subvolsBefore.has(s.fsPath)) continue;
      assert.ok(
        [...finals].some((f) => s.fsPath === `${destPath}/${f}`) ||
          (s.fsPath.startsWith(`${destPath}/`) && s.fsPath.endsWith('.part')),
        `new subvolume outside dest or under a final name: ${JSON.stringify(s.fsPath)}`,
      );
    }
  });

  it('fails the run on a corrupt stream (a length field claiming 4 GiB), receiving nothing', async () => {
    const corrupt = HOSTILE.find((c) => c.rule === 'corrupt')!;
    const uuid = randomUUID();
    const plan: HostilePlan = {
      canary,
      outsideUuid,
      volumes: [
        { uuid, path: 'corrupt', gen: 200, stream: { kind: 'hostile', name: corrupt.name } },
      ],
      sizes: { [`${uuid}_None`]: 4096 },
    };
    const canaryBefore = await treeDigest(canary);
    const before = new Set(await readdir(dest));
    await assert.rejects(sync(await hostileSource('corrupt', plan), destStore()), (e: unknown) => {
      assert.ok(findCause(e, StreamCorruptError), String(e));
      assert.match((e as Error).message, /^corrupt: /);
      return true;
    });
    for (const n of await readdir(dest)) {
      assert.ok(before.has(n) || n === 'corrupt.part', `unexpected ${n} in dest`);
    }
    assert.equal(await treeDigest(canary), canaryBefore, 'canary changed');
  });
});
