import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { UsageError } from '../../../src/errors.js';
import { buildGraph } from '../../../src/planner/graph.js';
import { planToJSON } from '../../../src/planner/plan.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import type { Volume } from '../../../src/planner/volume.js';
import { edges, input, offer, vol } from './helpers.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** A chain of snapshots `dir/s00`, `dir/s01`, … with generations 100, 200, … */
function chain(n: number, dir = 'home', extra: Partial<Volume> = {}): Volume[] {
  return Array.from({ length: n }, (_, i) =>
    vol(`${dir}/s${String(i).padStart(2, '0')}`, 100 * (i + 1), extra),
  );
}

describe('planSync: btrfs to btrfs', () => {
  it('sends a chain as one full and incrementals, parent first', () => {
    const [a, b, c] = chain(3) as [Volume, Volume, Volume];
    const plan = planSync(input({ source: [c, a, b] }));
    assert.deepEqual(edges(plan), ['home/s00<-', 'home/s01<-home/s00', 'home/s02<-home/s01']);
    assert.equal(plan.keep.length, 0);
    assert.equal(
      plan.totalBytes,
      plan.transfers.reduce((s, t) => s + t.size, 0),
    );
    assert.ok(plan.transfers.every((t) => t.estimated));
  });

  it('uses snapshots already at the destination as free parents', () => {
    const [a, b, c] = chain(3) as [Volume, Volume, Volume];
    const plan = planSync(input({ source: [a, b, c], dest: [a] }));
    assert.deepEqual(edges(plan), ['home/s01<-home/s00', 'home/s02<-home/s01']);
    assert.deepEqual(
      plan.keep.map((v) => v.path),
      ['home/s00'],
    );
  });

  it('uses a later snapshot at the destination as parent for earlier ones', () => {
    const [a, b, c] = chain(3) as [Volume, Volume, Volume];
    const plan = planSync(input({ source: [a, b, c], dest: [c] }));
    assert.deepEqual(edges(plan), ['home/s01<-home/s02', 'home/s00<-home/s01']);
  });

  it('transfers nothing when everything is there', () => {
    const vols = chain(4);
    const plan = planSync(input({ source: vols, dest: vols }));
    assert.deepEqual(plan.transfers, []);
    assert.equal(plan.keep.length, 4);
    assert.equal(plan.totalBytes, 0);
  });

  it('handles branches: two snapshots from one parent', () => {
    const a = vol('r/a', 100);
    const b = vol('r/b', 200);
    const c = vol('r/c', 300);
    // b and c were each made from a; b and c share little.
    const sizes: Record<string, number> = {
      'r/b<r/a': 5 * MiB,
      'r/c<r/a': 6 * MiB,
      'r/a<r/b': 5 * MiB,
      'r/a<r/c': 6 * MiB,
    };
    const plan = planSync(
      input({
        source: [a, b, c],
        estimate: (to, from) =>
          from === null ? GiB : (sizes[`${to.path}<${from.path}`] ?? 800 * MiB),
      }),
    );
    assert.deepEqual(edges(plan), ['r/a<-', 'r/b<-r/a', 'r/c<-r/a']);
  });

  it('re-parents a snapshot when a better parent is attached later', () => {
    const a = vol('r/a', 1);
    const b = vol('r/b', 2);
    const c = vol('r/c', 3);
    const plan = planSync(
      input({
        source: [a, b, c],
        sourceKind: 's3',
        sourceDiffs: [
          offer(a, null, 100 * MiB),
          offer(b, null, 100 * MiB),
          offer(b, a, 60 * MiB),
          offer(c, a, 50 * MiB),
          offer(c, b, 1 * MiB),
        ],
      }),
    );
    assert.deepEqual(edges(plan), ['r/a<-', 'r/b<-r/a', 'r/c<-r/b']);
  });

  it('picks the smaller snapshot for the full send', () => {
    const a = vol('d/a', 100, { totalSize: 3 * GiB, exclusiveSize: 10 * MiB });
    const b = vol('d/b', 200, { totalSize: 1 * GiB, exclusiveSize: 10 * MiB });
    const plan = planSync(input({ source: [a, b] }));
    assert.equal(plan.transfers[0]?.to.path, 'd/b');
    assert.equal(plan.transfers[0]?.from, null);
    assert.equal(plan.transfers[1]?.from?.path, 'd/b');
  });

  it('sends independent directories with one full each', () => {
    const plan = planSync(input({ source: [...chain(3, 'a'), ...chain(3, 'b')] }));
    assert.equal(plan.transfers.filter((t) => t.from === null).length, 2);
    for (const t of plan.transfers) {
      if (t.from) assert.equal(t.from.path.split('/')[0], t.to.path.split('/')[0]);
    }
  });

  it('finds parents through a shared parent UUID across directories', () => {
    const a = vol('x/a', 100, { parentUuid: 'rw' });
    const b = vol('y/b', 200, { parentUuid: 'rw' });
    const plan = planSync(input({ source: [a, b], dest: [a] }));
    assert.deepEqual(edges(plan), ['y/b<-x/a']);
  });

  it('prefers measured size hints over estimates', () => {
    const [a, b, c] = chain(3) as [Volume, Volume, Volume];
    // measured (.bs) says c from a is tiny; the estimate for c from b would be ~5 %.
    const plan = planSync(
      input({ source: [a, b, c], dest: [a, b], sourceDiffs: [offer(c, a, 1 * MiB)] }),
    );
    assert.deepEqual(edges(plan), ['home/s02<-home/s00']);
    assert.equal(plan.transfers[0]?.estimated, false);
    assert.equal(plan.transfers[0]?.size, 1 * MiB);
  });

  it('uses input.measured sizes and marks them measured', () => {
    const [a, b] = chain(2) as [Volume, Volume];
    const plan = planSync({
      ...input({ source: [a, b], dest: [a] }),
      measured: new Map([[`${b.uuid}_${a.uuid}`, 1234]]),
    });
    assert.equal(plan.transfers[0]?.size, 1234);
    assert.equal(plan.transfers[0]?.estimated, false);
  });
});

describe('planSync: exclusions, single snapshot, delete', () => {
  it('skips excluded snapshots and never deletes them', () => {
    const [a, b] = chain(2) as [Volume, Volume];
    const tmp = vol('tmp/t1', 150);
    const oldTmp = vol('tmp/t0', 50);
    const gone = vol('home/gone', 10);
    const plan = planSync(
      input({
        source: [a, b, tmp],
        dest: [oldTmp, gone],
        options: { exclude: [/^tmp\//g], delete: true },
      }),
    );
    assert.ok(!plan.transfers.some((t) => t.to.path.startsWith('tmp/')));
    assert.deepEqual(
      plan.deletes.volumes.map((v) => v.path),
      ['home/gone'],
    );
  });

  it('deletes nothing without --delete', () => {
    const plan = planSync(input({ source: chain(2), dest: [vol('home/gone', 10)] }));
    assert.deepEqual(plan.deletes, { volumes: [], diffs: [] });
  });

  it('sends a single snapshot from a common one at the destination', () => {
    const vols = chain(5);
    const plan = planSync(
      input({
        source: vols,
        dest: [vols[1] as Volume, vol('other/x', 1)],
        options: { only: 'home/s04', delete: true },
      }),
    );
    assert.deepEqual(edges(plan), ['home/s04<-home/s01']);
    assert.deepEqual(plan.deletes, { volumes: [], diffs: [] });
    assert.ok(plan.warnings.some((w) => w.code === 'DELETE_IGNORED'));
  });

  it('accepts a UUID for the single snapshot and sends it full when nothing is shared', () => {
    const vols = chain(3);
    const plan = planSync(input({ source: vols, options: { only: (vols[2] as Volume).uuid } }));
    assert.deepEqual(edges(plan), ['home/s02<-']);
  });

  it('rejects a single snapshot not in the source', () => {
    assert.throws(
      () => planSync(input({ source: chain(2), options: { only: 'nope' } })),
      UsageError,
    );
  });

  it('warns about duplicate UUIDs and keeps the first by path', () => {
    const a = vol('a/x', 1);
    const plan = planSync(input({ source: [{ ...a, path: 'b/x' }, a] }));
    assert.deepEqual(edges(plan), ['a/x<-']);
    assert.ok(plan.warnings.some((w) => w.code === 'DUPLICATE_UUID'));
  });
});

describe('planSync: S3', () => {
  it('restores from an S3 source through its stored diffs', () => {
    const [a, b, c] = chain(3) as [Volume, Volume, Volume];
    const plan = planSync(
      input({
        source: [a, b, c],
        sourceKind: 's3',
        sourceDiffs: [
          offer(a, null, GiB),
          offer(b, a, 10 * MiB),
          offer(b, null, GiB),
          offer(c, b, 20 * MiB),
        ],
      }),
    );
    assert.deepEqual(edges(plan), ['home/s00<-', 'home/s01<-home/s00', 'home/s02<-home/s01']);
    assert.ok(plan.transfers.every((t) => !t.estimated));
  });

  it('reports snapshots no stored diff can create', () => {
    const [a, b] = chain(2) as [Volume, Volume];
    const plan = planSync(
      input({ source: [a, b], sourceKind: 's3', sourceDiffs: [offer(b, a, MiB)] }),
    );
    assert.deepEqual(plan.transfers, []);
    assert.deepEqual(
      plan.missing.map((v) => v.path),
      ['home/s00', 'home/s01'],
    );
    assert.equal(plan.warnings.filter((w) => w.code === 'UNREACHABLE').length, 2);
  });

  it('keeps what the bucket has and uploads only the new diff', () => {
    const [a, b, c] = chain(3) as [Volume, Volume, Volume];
    const plan = planSync(
      input({
        source: [a, b, c],
        dest: [a, b],
        destKind: 's3',
        destDiffs: [
          offer(a, null, GiB, { store: 'dest' }),
          offer(b, a, 10 * MiB, { store: 'dest' }),
        ],
      }),
    );
    assert.deepEqual(edges(plan), ['home/s02<-home/s01']);
    assert.deepEqual(
      plan.keep.map((v) => v.path),
      ['home/s00', 'home/s01'],
    );
    assert.equal(plan.transfers[0]?.height, 3);
  });

  it('with --delete removes stored diffs nothing needs any more', () => {
    const [a, b] = chain(2) as [Volume, Volume];
    const old = vol('home/old', 10);
    const bFull = offer(b, null, GiB, { store: 'dest' });
    const oldFull = offer(old, null, GiB, { store: 'dest' });
    const plan = planSync(
      input({
        source: [a, b],
        dest: [a, b, old],
        destKind: 's3',
        destDiffs: [
          offer(a, null, GiB, { store: 'dest' }),
          offer(b, a, 10 * MiB, { store: 'dest' }),
          bFull,
          oldFull,
        ],
        options: { delete: true },
      }),
    );
    assert.deepEqual(plan.transfers, []);
    assert.deepEqual(plan.deletes.diffs, [bFull, oldFull]);
    assert.deepEqual(plan.deletes.volumes, []);
  });

  it('keeps stored intermediate snapshots the source no longer has', () => {
    const [a, b, c] = chain(3) as [Volume, Volume, Volume];
    // The source deleted a; the bucket restores b only through a.
    const plan = planSync(
      input({
        source: [b, c],
        dest: [a, b],
        destKind: 's3',
        destDiffs: [
          offer(a, null, GiB, { store: 'dest' }),
          offer(b, a, 10 * MiB, { store: 'dest' }),
        ],
        options: { delete: true },
      }),
    );
    assert.deepEqual(edges(plan), ['home/s02<-home/s01']);
    assert.deepEqual(
      plan.keep.map((v) => v.path),
      ['home/s00', 'home/s01'],
    );
    assert.deepEqual(plan.deletes.diffs, []);
  });

  it('breaks a chain of 30 stored incrementals with a fresh full send', () => {
    const vols = chain(31, 'home', { totalSize: GiB, exclusiveSize: 10 * MiB });
    const stored = vols.map((v, i) =>
      offer(v, i === 0 ? null : (vols[i - 1] as Volume), i === 0 ? GiB : 10 * MiB, {
        store: 'dest',
      }),
    );
    const plan = planSync(input({ source: vols, dest: vols, destKind: 's3', destDiffs: stored }));
    const fulls = plan.transfers.filter((t) => t.from === null);
    assert.ok(fulls.length >= 1, 'at least one full send');
    assert.ok(
      plan.transfers.every((t) => t.height <= 12),
      'restore chains stay short',
    );
    // The same snapshots in a subvolume store need nothing.
    assert.deepEqual(planSync(input({ source: vols, dest: vols })).transfers, []);
  });

  it('starts new chains now and then when uploading 31 snapshots', () => {
    const vols = chain(31, 'home', { totalSize: GiB, exclusiveSize: 10 * MiB });
    const plan = planSync(input({ source: vols, destKind: 's3' }));
    const fulls = plan.transfers.filter((t) => t.from === null).length;
    assert.ok(fulls >= 3 && fulls <= 8, `fulls: ${fulls}`);
    const toBtrfs = planSync(input({ source: vols }));
    assert.equal(toBtrfs.transfers.filter((t) => t.from === null).length, 1);
  });
});

describe('planSync: determinism and graph size', () => {
  it('gives the same plan for the same input in any order', () => {
    const vols = [...chain(6, 'a'), ...chain(4, 'b')];
    const dest = [vols[2] as Volume, vols[7] as Volume];
    const one = planToJSON(planSync(input({ source: vols, dest })));
    const two = planToJSON(
      planSync(input({ source: [...vols].reverse(), dest: [...dest].reverse() })),
    );
    assert.deepEqual(one, two);
  });

  it('keeps candidate edges O(n·k)', () => {
    const n = 500;
    const g = buildGraph(input({ source: chain(n, 'd', { parentUuid: 'rw' }) }));
    // Per snapshot: full + 2k neighbours (k = 2), found in two families but deduplicated.
    assert.ok(g.edges.length <= n * 5, `edges: ${g.edges.length}`);
  });
});

describe('planSync: what a plan names, keeps and counts', () => {
  it('sends from a parent only the destination lists, shows the destination’s copy and deletes it after', () => {
    const b = vol('h/b', 2);
    const x = vol('h/x', 1);
    const plan = planSync(
      input({
        source: [b],
        sourceKind: 's3',
        sourceDiffs: [offer(b, x, 10 * MiB)],
        dest: [x],
        options: { delete: true },
      }),
    );
    assert.deepEqual(edges(plan), ['h/b<-h/x']);
    assert.equal(plan.transfers[0]?.from, x);
    assert.deepEqual(plan.deletes.volumes, [x]);
    assert.deepEqual(plan.keep, []);
  });

  it('lists keeps by path and as the destination lists them', () => {
    const p = vol('h/b', 1);
    const q = vol('h/a', 2);
    const plan = planSync(input({ source: [p, q], dest: [p, q] }));
    assert.deepEqual(
      plan.keep.map((v) => v.path),
      ['h/a', 'h/b'],
    );
    const moved = planSync(
      input({ source: [vol('src/a', 1)], dest: [{ uuid: 'u:src/a', path: 'backup/a', gen: 1 }] }),
    );
    assert.deepEqual(moved.keep, [{ uuid: 'u:src/a', path: 'backup/a', gen: 1 }]);
  });

  it('keeps only the destination snapshots it needs', () => {
    const a = vol('h/a', 1);
    const old = vol('h/b-old', 2);
    const c = vol('h/c', 3);
    const plan = planSync(input({ source: [a, c], dest: [a, old] }));
    assert.deepEqual(
      plan.keep.map((v) => v.path),
      ['h/a'],
    );
    assert.deepEqual(edges(plan), ['h/c<-h/a']);
  });

  it('keeps every stored link of a chain a snapshot needs, however long', () => {
    const [a, b, c, d] = chain(4) as [Volume, Volume, Volume, Volume];
    const plan = planSync(
      input({
        source: [c, d],
        dest: [a, b, c],
        destKind: 's3',
        destDiffs: [
          offer(a, null, GiB, { store: 'dest' }),
          offer(b, a, 10 * MiB, { store: 'dest' }),
          offer(c, b, 10 * MiB, { store: 'dest' }),
        ],
        options: { delete: true },
      }),
    );
    assert.deepEqual(edges(plan), ['home/s03<-home/s02']);
    assert.deepEqual(
      plan.keep.map((v) => v.path),
      ['home/s00', 'home/s01', 'home/s02'],
    );
    assert.deepEqual(plan.deletes.diffs, []);
  });

  it('sends ready snapshots oldest first, and a parent before its child even when the child is older', () => {
    const x = vol('a/x', 300);
    const y = vol('b/y', 100);
    const z = vol('c/z', 200);
    assert.deepEqual(edges(planSync(input({ source: [x, y, z] }))), ['b/y<-', 'c/z<-', 'a/x<-']);
    const a = vol('h/a', 2);
    const b = vol('h/b', 1);
    const plan = planSync(
      input({
        source: [a, b],
        sourceKind: 's3',
        sourceDiffs: [offer(a, null, 100), offer(b, a, 10)],
      }),
    );
    assert.deepEqual(edges(plan), ['h/a<-', 'h/b<-h/a']);
  });

  it('counts the cost of needed snapshots only', () => {
    const x = vol('a/x', 1);
    const w = vol('b/w', 2);
    const xFull = offer(x, null, 1600, { store: 'dest' });
    const plan = planSync(
      input({
        source: [w],
        sourceKind: 's3',
        sourceDiffs: [offer(w, null, 3200)],
        dest: [x],
        destKind: 's3',
        destDiffs: [xFull],
        options: { delete: true },
      }),
    );
    assert.deepEqual(edges(plan), ['b/w<-']);
    // 3200 sent, 3200/16 stored, 3200 · 2^(1 − 8) risk; x (attached first, cheaper) is not needed.
    assert.equal(plan.cost, 3200 + 200 + 25);
    assert.deepEqual(plan.deletes.diffs, [xFull]);
  });

  it('deletes no stored diff of an excluded snapshot, and names unlisted ones by UUID', () => {
    const a = vol('home/a', 1);
    const tmp = vol('tmp/old', 1);
    const tmpFull = offer(tmp, null, MiB, { store: 'dest' });
    const ghostFull = { ...tmpFull, to: 'ghost' };
    const plan = planSync(
      input({
        source: [a],
        dest: [tmp],
        destKind: 's3',
        destDiffs: [tmpFull, ghostFull],
        options: { delete: true, exclude: [/^tmp\//] },
      }),
    );
    assert.deepEqual(plan.deletes.diffs, [ghostFull]);
  });

  it('explains each unreachable snapshot', () => {
    const [a, b] = chain(2) as [Volume, Volume];
    const plan = planSync(
      input({ source: [a, b], sourceKind: 's3', sourceDiffs: [offer(b, a, MiB)] }),
    );
    assert.deepEqual(
      plan.warnings.map((w) => [w.code, w.details]),
      [
        ['UNREACHABLE', { uuid: a.uuid, path: a.path }],
        ['UNREACHABLE', { uuid: b.uuid, path: b.path }],
      ],
    );
  });
});
