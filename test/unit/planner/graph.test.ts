import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { estimateDiffSize, familyStats } from '../../../src/planner/estimate.js';
import { buildGraph, compareGen, comparePathUuid } from '../../../src/planner/graph.js';
import type { Graph } from '../../../src/planner/graph.js';
import type { DiffOffer } from '../../../src/planner/plan-input.js';
import { edgeKey } from '../../../src/planner/plan-input.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import type { Volume } from '../../../src/planner/volume.js';
import { edges, input, offer, vol } from './helpers.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** `dir/s00`, `dir/s01`, … with generations 100, 200, … */
function chain(n: number, dir = 'home'): Volume[] {
  return Array.from({ length: n }, (_, i) =>
    vol(`${dir}/s${String(i).padStart(2, '0')}`, 100 * (i + 1)),
  );
}

/** A stored diff of a diff-storing destination, between raw UUIDs. */
function stored(to: string, from: string | null, size: number): DiffOffer {
  return { to, from, size, estimated: false, store: 'dest', atDest: true };
}

/** The edge creating `to` from `from` (null: full), if the graph has it. */
function edgeOf(g: Graph, to: Volume, from: Volume | null) {
  return g.edges.find((e) => e.key === edgeKey(to.uuid, from?.uuid ?? null));
}

describe('comparePathUuid and compareGen', () => {
  const v = (path: string, uuid: string, gen?: number): Volume => ({
    path,
    uuid,
    ...(gen === undefined ? {} : { gen }),
  });

  it('orders by path, then UUID; equal only for the same path and UUID', () => {
    assert.equal(comparePathUuid(v('a', '2'), v('b', '1')), -1);
    assert.equal(comparePathUuid(v('b', '1'), v('a', '2')), 1);
    assert.equal(comparePathUuid(v('a', '1'), v('a', '2')), -1);
    assert.equal(comparePathUuid(v('a', '2'), v('a', '1')), 1);
    assert.equal(comparePathUuid(v('a', '1'), v('a', '1')), 0);
  });

  it('orders by generation first, unknown generations last, then by path and UUID', () => {
    assert.equal(compareGen(v('b', '1', 1), v('a', '2', 2)), -1);
    assert.equal(compareGen(v('a', '2', 2), v('b', '1', 1)), 1);
    assert.equal(compareGen(v('a', '1', 0), v('b', '2', 1)), -1);
    assert.equal(compareGen(v('a', '1', 5), v('b', '2', 5)), -1);
    assert.equal(compareGen(v('b', '1', 5), v('a', '2', 5)), 1);
    assert.equal(compareGen(v('a', '1'), v('b', '2', 1e9)), 1);
    assert.equal(compareGen(v('b', '2', 1e9), v('a', '1')), -1);
    assert.equal(compareGen(v('a', '1'), v('b', '2')), -1);
    assert.equal(compareGen(v('a', '1', 3), v('a', '1', 3)), 0);
  });
});

describe('buildGraph: nodes', () => {
  it('sorts nodes by path, destination-only ones included', () => {
    const g = buildGraph(input({ source: [vol('h/b', 2)], dest: [vol('h/a', 1)] }));
    assert.deepEqual(
      g.nodes.map((n) => [n.uuid, n.wanted, n.present]),
      [
        ['u:h/a', false, true],
        ['u:h/b', true, false],
      ],
    );
    assert.deepEqual(g.warnings, []);
  });

  it('adds both ends of stored diffs, named by UUID when no store lists them', () => {
    const b = vol('h/b', 2);
    const g = buildGraph(
      input({
        source: [b],
        destKind: 's3',
        destDiffs: [stored(b.uuid, 'ghost', MiB), stored('lost', null, GiB)],
      }),
    );
    assert.deepEqual(
      g.nodes.map((n) => [n.uuid, n.volume, n.wanted]),
      [
        ['ghost', { uuid: 'ghost', path: 'ghost' }, false],
        ['u:h/b', b, true],
        ['lost', { uuid: 'lost', path: 'lost' }, false],
      ],
    );
    assert.deepEqual(
      buildGraph(input({ source: [b], destKind: 's3' })).nodes.map((n) => n.uuid),
      [b.uuid],
    );
  });

  it('warns about a duplicate UUID with what it kept', () => {
    const a = vol('a/x', 1);
    const g = buildGraph(input({ source: [{ ...a, path: 'b/x' }, a] }));
    assert.deepEqual(
      g.warnings.map((w) => [w.code, w.details]),
      [['DUPLICATE_UUID', { uuid: a.uuid, path: 'b/x', kept: 'a/x' }]],
    );
  });

  it('excludes by pattern with its flags, except the stateful g and y', () => {
    const g = buildGraph(
      input({
        source: [vol('TMP/a', 1), vol('tmp/b', 2), vol('home/c', 3)],
        options: { exclude: [/^tmp\//gi] },
      }),
    );
    assert.deepEqual(
      g.nodes.filter((n) => n.wanted).map((n) => n.volume.path),
      ['home/c'],
    );
    assert.equal(g.isExcluded('Tmp/x'), true);
    assert.equal(g.isExcluded('Tmp/x'), true);
  });
});

describe('buildGraph: offered diffs', () => {
  it('takes offers in key order whatever the input order; of two offers for one diff, the first', () => {
    const vols = Array.from({ length: 30 }, (_, i) => vol(`r/v${String(i).padStart(2, '0')}`, i));
    const offers = vols.map((_, i) => offer(vols[(i * 7) % 30] as Volume, null, 100 + i));
    const a = vols[0] as Volume;
    const g = buildGraph(
      input({
        source: vols,
        sourceKind: 's3',
        sourceDiffs: [
          offer(a, null, 1),
          ...offers.slice(1),
          offer(a, null, 2),
          offers[0] as DiffOffer,
        ],
      }),
    );
    const keys = g.edges.map((e) => e.key);
    assert.deepEqual(keys, [...keys].sort());
    assert.equal(keys.length, 30);
    assert.equal(edgeOf(g, a, null)?.size, 1);
  });

  it('ignores offers for snapshots that need none and from parents that are no node', () => {
    const a = vol('h/a', 1);
    const t = vol('tmp/t', 2);
    const ghost = vol('h/ghost', 3);
    const plan = planSync(
      input({
        source: [a, t],
        sourceKind: 's3',
        sourceDiffs: [offer(a, null, MiB), offer(t, null, MiB), offer(a, ghost, 1)],
        options: { exclude: [/^tmp\//] },
      }),
    );
    assert.deepEqual(edges(plan), ['h/a<-']);
  });

  it('uses a btrfs source’s size hints for full sends, but never from a parent it lacks', () => {
    const a = vol('h/a', 1);
    const b = vol('h/b', 2);
    const x = vol('h/x', 1);
    const full = planSync(input({ source: [a], sourceDiffs: [offer(a, null, 5 * MiB)] }));
    assert.deepEqual(
      full.transfers.map((t) => [t.size, t.estimated]),
      [[5 * MiB, false]],
    );
    // x is at the destination, but the source cannot send from it.
    const lacks = planSync(input({ source: [b], dest: [x], sourceDiffs: [offer(b, x, MiB)] }));
    assert.deepEqual(edges(lacks), ['h/b<-']);
  });

  it('counts an offer as held by the destination only when the destination stores diffs', () => {
    const a = vol('h/a', 1);
    const b = vol('h/b', 2);
    const held = { ...offer(b, a, 7 * MiB), atDest: true };
    const toS3 = planSync(
      input({
        source: [a, b],
        dest: [a],
        destKind: 's3',
        destDiffs: [stored(a.uuid, null, GiB)],
        sourceDiffs: [held],
      }),
    );
    assert.deepEqual(toS3.transfers, []);
    assert.deepEqual(
      toS3.keep.map((v) => v.path),
      ['h/a', 'h/b'],
    );
    const toBtrfs = planSync(input({ source: [a, b], dest: [a], sourceDiffs: [held] }));
    assert.deepEqual(edges(toBtrfs), ['h/b<-h/a']);
    assert.equal(toBtrfs.transfers[0]?.size, 7 * MiB);
  });
});

describe('buildGraph: generated candidates', () => {
  it('asks the estimator only for diffs nothing offered, and checks its answer', () => {
    const a = vol('h/a', 1);
    const b = vol('h/b', 2);
    const asked: string[] = [];
    buildGraph(
      input({
        source: [a, b],
        dest: [a],
        sourceDiffs: [offer(b, a, 3 * MiB), offer(b, null, 9 * MiB)],
        estimate: (to, from) => {
          asked.push(edgeKey(to.uuid, from?.uuid ?? null));
          return undefined;
        },
      }),
    );
    assert.deepEqual(asked, []);
    const fullSize = (answer: number | undefined) =>
      edgeOf(buildGraph(input({ source: [a], estimate: () => answer })), a, null)?.size;
    assert.equal(fullSize(0), 0);
    assert.equal(fullSize(12345), 12345);
    for (const bad of [undefined, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.equal(fullSize(bad), GiB, `estimator answer ${bad}`);
    }
  });

  it('sizes a full send with the directory family’s mean known total', () => {
    const a = vol('d/a', 1, { totalSize: 2 * GiB });
    const b = vol('d/b', 2);
    const g = buildGraph(input({ source: [a, b] }));
    assert.equal(edgeOf(g, b, null)?.size, 2 * GiB);
  });

  it('finds parents among top-level snapshots (no directory)', () => {
    const a = vol('a1', 1);
    const b = vol('b2', 2);
    assert.deepEqual(edges(planSync(input({ source: [a, b], dest: [a] }))), ['b2<-a1']);
  });

  it('sizes a pair in a directory and a parent family with the directory family first (key order)', () => {
    const x = vol('a/x', 100, { parentUuid: 'rw' });
    const y = vol('b/y', 1000, { parentUuid: 'rw' });
    const z = vol('b/z', 1010, { parentUuid: 'rw' });
    const g = buildGraph(input({ source: [x, y, z], dest: [y] }));
    // The directory family b/ has a typical step of 10 generations; the parent family, 900.
    assert.equal(edgeOf(g, z, y)?.size, estimateDiffSize(z, y, familyStats([y, z])));
  });

  it('ranks neighbours by generation, not by path', () => {
    const a = vol('d/a', 2);
    const b = vol('d/b', 1);
    const c = vol('d/c', 3);
    const plan = planSync(input({ source: [a, b, c], dest: [a, b], options: { neighbours: 1 } }));
    assert.deepEqual(edges(plan), ['d/c<-d/a']);
  });

  it('with no neighbours, offers the nearest snapshot the destination has, on each side', () => {
    const vols = chain(4);
    const s0 = vols[0] as Volume;
    const s3 = vols[3] as Volume;
    const before = planSync(input({ source: vols, dest: [s0], options: { neighbours: 0 } }));
    assert.deepEqual(edges(before), [
      'home/s01<-home/s00',
      'home/s02<-home/s00',
      'home/s03<-home/s00',
    ]);
    const after = planSync(input({ source: vols, dest: [s3], options: { neighbours: 0 } }));
    assert.deepEqual(edges(after), [
      'home/s00<-home/s03',
      'home/s01<-home/s03',
      'home/s02<-home/s03',
    ]);
    // A snapshot a diff-storing destination can rebuild counts as well.
    const s3dest = planSync(
      input({
        source: vols.slice(0, 3),
        dest: [s0],
        destKind: 's3',
        destDiffs: [stored(s0.uuid, null, GiB)],
        options: { neighbours: 0 },
      }),
    );
    assert.deepEqual(edges(s3dest), ['home/s01<-home/s00', 'home/s02<-home/s00']);
  });

  it('offers the parent UUID’s snapshot when the source has it and it is a node', () => {
    const p = vol('d/p', 1);
    const v = vol('d/v', 50, { parentUuid: p.uuid });
    const plan = planSync(input({ source: [p, v], options: { neighbours: 0 } }));
    assert.deepEqual(edges(plan), ['d/p<-', 'd/v<-d/p']);
    // Only v is wanted and p is not at the destination: p is no node, so no diff from it.
    const only = planSync(input({ source: [p, v], options: { neighbours: 0, only: 'd/v' } }));
    assert.deepEqual(edges(only), ['d/v<-']);
  });

  it('offers the parent UUID’s snapshot also to a snapshot alone in both its families', () => {
    // v is the only snapshot in d2/ and the only one made from p: no family of two.
    const p = vol('d1/p', 1);
    const v = vol('d2/v', 50, { parentUuid: p.uuid });
    const g = buildGraph(input({ source: [p, v], options: { neighbours: 0 } }));
    assert.ok(edgeOf(g, v, p), 'the diff from its parent snapshot is a candidate');
    const plan = planSync(input({ source: [p, v], options: { neighbours: 0 } }));
    assert.deepEqual(edges(plan), ['d1/p<-', 'd2/v<-d1/p']);
  });

  it('generates no edge into a snapshot the destination already has', () => {
    const vols = chain(3);
    const g = buildGraph(input({ source: vols, dest: vols.slice(0, 2) }));
    assert.deepEqual(
      g.edges.filter((e) => g.nodes[e.to]?.present).map((e) => e.key),
      [],
    );
    assert.ok(g.edges.length > 0);
  });
});
