import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { costContext, edgeCost } from '../../../src/planner/cost-model.js';
import type { CostContext } from '../../../src/planner/cost-model.js';
import { buildGraph } from '../../../src/planner/graph.js';
import type { Graph, GraphEdge } from '../../../src/planner/graph.js';
import type { DiffOffer, PlanInput, StoreKind } from '../../../src/planner/plan-input.js';
import { DETACHED, PRESENT, searchPlan } from '../../../src/planner/plan-search.js';
import type { SearchResult } from '../../../src/planner/plan-search.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import type { Volume } from '../../../src/planner/volume.js';
import { edges, input, offer, vol } from './helpers.js';

/** An S3 source offering exactly these (measured) diffs: the graph is what the test says. */
function offered(vols: Volume[], offers: DiffOffer[], destKind: StoreKind = 'btrfs'): PlanInput {
  return input({ source: vols, sourceKind: 's3', sourceDiffs: offers, destKind });
}

/** The path of the parent the search chose for `path` ('' for a full send, null when none). */
function parentOf(g: Graph, r: SearchResult, path: string): string | null {
  const i = g.nodes.findIndex((n) => n.volume.path === path);
  const pe = r.parentEdge[i] as number;
  if (pe < 0) return null;
  const from = (g.edges[pe] as GraphEdge).from;
  return from < 0 ? '' : (g.nodes[from]?.volume.path as string);
}

describe('searchPlan: ties go to the lower rank', () => {
  it('between equal edges into one snapshot, takes the parent with the lower path (either push order)', () => {
    const a = vol('r/a', 2);
    const b = vol('r/b', 1);
    const c = vol('r/c', 3);
    // b first, then a from b: the edge c<-b enters the queue before c<-a.
    const late = planSync(
      offered([a, b, c], [offer(b, null, 100), offer(a, b, 10), offer(c, a, 20), offer(c, b, 20)]),
    );
    assert.deepEqual(edges(late), ['r/b<-', 'r/a<-r/b', 'r/c<-r/a']);
    // a first, then b from a: c<-a enters first.
    const early = planSync(
      offered([a, b, c], [offer(a, null, 100), offer(b, a, 10), offer(c, a, 20), offer(c, b, 20)]),
    );
    assert.deepEqual(edges(early), ['r/a<-', 'r/b<-r/a', 'r/c<-r/a']);
  });

  it('when re-parenting, takes the first of equally better parents', () => {
    const r = vol('r/r', 1);
    const p = vol('r/p', 2);
    const q = vol('r/q', 3);
    const v = vol('r/v', 4);
    const plan = planSync(
      offered(
        [p, q, r, v],
        [
          offer(r, null, 100),
          offer(v, r, 50),
          offer(p, r, 60),
          offer(q, r, 60),
          offer(v, p, 1),
          offer(v, q, 1),
        ],
      ),
    );
    assert.deepEqual(edges(plan), ['r/r<-', 'r/p<-r/r', 'r/q<-r/r', 'r/v<-r/p']);
  });
});

describe('searchPlan: improvement passes', () => {
  it('re-parents under a parent attached later, also through the first edge; maxPasses 0 keeps the greedy tree', () => {
    // Edge 0 (key order) is a<-p, the one the greedy step takes.
    const a = vol('r/a', 3);
    const p = vol('r/p', 1);
    const q = vol('r/q', 2);
    const inp = offered(
      [a, p, q],
      [offer(p, null, 100), offer(q, p, 60), offer(a, p, 50), offer(a, q, 1)],
    );
    const g = buildGraph(inp);
    assert.equal(g.edges[0]?.key, `${a.uuid}_${p.uuid}`);
    const ctx = costContext({});
    assert.equal(parentOf(g, searchPlan(g, ctx), 'r/a'), 'r/q');
    assert.equal(parentOf(g, searchPlan(g, ctx, { maxPasses: 0 }), 'r/a'), 'r/p');
    assert.equal(parentOf(g, searchPlan(g, ctx, { maxPasses: 1 }), 'r/a'), 'r/q');
  });

  it('re-parents through the first edge when it is the better one', () => {
    // Edge 0 is a<-b, the better parent, attached after a.
    const a = vol('r/a', 3);
    const b = vol('r/b', 2);
    const c = vol('r/c', 1);
    const plan = planSync(
      offered([a, b, c], [offer(c, null, 100), offer(b, c, 60), offer(a, c, 50), offer(a, b, 1)]),
    );
    assert.deepEqual(edges(plan), ['r/c<-', 'r/b<-r/c', 'r/a<-r/b']);
  });

  it('ignores a gain within float noise (a billionth of the cost), takes a larger one', () => {
    const G = 2 ** 30;
    const a = vol('r/a', 1);
    const b = vol('r/b', 2);
    const v = vol('r/v', 3);
    const parent = (gain: number) => {
      const plan = planSync(
        offered(
          [a, b, v],
          [offer(a, null, 10), offer(v, a, G + gain), offer(b, a, G + gain + 1), offer(v, b, G)],
        ),
      );
      return plan.transfers.find((t) => t.to.path === 'r/v')?.from?.path;
    };
    assert.equal(parent(1), 'r/a');
    assert.equal(parent(4), 'r/b');
  });

  it('restates everything below a node it moves, also what it moved under node 0 before', () => {
    // Greedy: r; v<-r; a<-r; p<-a; q<-r. Pass 1: p moves under q, v under a (node 0).
    // Pass 2: a moves under p (no longer below a), taking v along: v ends 5 deep.
    const a = vol('r/a', 1);
    const p = vol('r/p', 2);
    const q = vol('r/q', 3);
    const r = vol('r/r', 4);
    const v = vol('r/v', 5);
    const plan = planSync(
      offered(
        [a, p, q, r, v],
        [
          offer(r, null, 100),
          offer(a, r, 50),
          offer(p, a, 20),
          offer(q, r, 80),
          offer(p, q, 5),
          offer(a, p, 10),
          offer(v, r, 40),
          offer(v, a, 1),
        ],
      ),
    );
    assert.deepEqual(
      plan.transfers.map((t) => [t.to.path, t.from?.path ?? '', t.height]),
      [
        ['r/r', '', 1],
        ['r/q', 'r/r', 2],
        ['r/p', 'r/q', 3],
        ['r/a', 'r/p', 4],
        ['r/v', 'r/a', 5],
      ],
    );
  });

  it('records the height of full sends and of the diffs on them', () => {
    const a = vol('r/a', 1);
    const b = vol('r/b', 2);
    const plan = planSync(offered([a, b], [offer(a, null, 100), offer(b, a, 10)], 's3'));
    assert.deepEqual(
      plan.transfers.map((t) => [t.to.path, t.height]),
      [
        ['r/a', 1],
        ['r/b', 2],
      ],
    );
  });
});

describe('searchPlan: greedy phase stops when every wanted snapshot is attached', () => {
  it('does not attach, nor re-parent under, a stored snapshot nothing needed yet', () => {
    // x (node 0) is stored with a diff to w; sending w full is cheaper than restoring x.
    const x = vol('a/x', 1);
    const w = vol('b/w', 2);
    const xFull: DiffOffer = { ...offer(x, null, 1600), store: 'dest', atDest: true };
    const wFromX: DiffOffer = { ...offer(w, x, 16), store: 'dest', atDest: true };
    const plan = planSync(
      input({
        source: [w],
        sourceKind: 's3',
        sourceDiffs: [offer(w, null, 40)],
        dest: [x],
        destKind: 's3',
        destDiffs: [xFull, wFromX],
        options: { delete: true },
      }),
    );
    assert.deepEqual(edges(plan), ['b/w<-']);
    assert.deepEqual(plan.keep, []);
    assert.deepEqual(plan.deletes.diffs, [xFull, wFromX]);
    // 40 bytes sent, 40/16 stored, (0 + 40) · 2^(1 − 8) corruption risk.
    assert.equal(plan.cost, 40 + 2.5 + 0.3125);
  });
});

/** A deterministic pseudo-random number generator (LCG) in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A random planning problem: an S3 source offering random fulls and diffs (the last snapshot
 * always has a full; node 0 may not, so edge 0 can be a diff).
 */
function randomInput(seed: number, destKind: StoreKind): PlanInput {
  const rnd = lcg(seed);
  const n = 6 + Math.floor(rnd() * 5);
  const vols = Array.from({ length: n }, (_, i) => vol(`r/s${i}`, i + 1));
  const offers: DiffOffer[] = [];
  vols.forEach((v, i) => {
    if (i === n - 1 || rnd() < 0.35) offers.push(offer(v, null, 500 + Math.floor(rnd() * 1500)));
    vols.forEach((from, j) => {
      if (j !== i && rnd() < 0.3) offers.push(offer(v, from, 1 + Math.floor(rnd() * 600)));
    });
  });
  // A subvolume destination holds a few of them already: free parents.
  const dest = destKind === 'btrfs' ? vols.filter(() => rnd() < 0.15) : [];
  return input({ source: vols, sourceKind: 's3', sourceDiffs: offers, dest, destKind });
}

/** Height, chain bytes and cost of every node of the forest `parentEdge`, computed from scratch. */
function recompute(g: Graph, ctx: CostContext, parentEdge: Int32Array) {
  const n = g.nodes.length;
  const height = new Array<number>(n).fill(0);
  const chain = new Array<number>(n).fill(0);
  const cost = new Array<number>(n).fill(0);
  const done = new Array<boolean>(n).fill(false);
  const visit = (v: number, depth: number): void => {
    if (done[v]) return;
    assert.ok(depth <= n, 'the chosen edges form no cycle');
    const pe = parentEdge[v] as number;
    if (pe >= 0) {
      const e = g.edges[pe] as GraphEdge;
      assert.equal(e.to, v);
      let ph = 0;
      let pc = 0;
      if (e.from >= 0) {
        assert.notEqual(parentEdge[e.from], DETACHED, 'a parent is attached');
        visit(e.from, depth + 1);
        ph = height[e.from] as number;
        pc = chain[e.from] as number;
      }
      height[v] = ph + 1;
      chain[v] = pc + e.size;
      cost[v] = edgeCost({ ...e, parentHeight: ph, parentChainBytes: pc }, ctx);
    }
    done[v] = true;
  };
  for (let v = 0; v < n; v++) visit(v, 0);
  return { height, chain, cost, total: cost.reduce((s, c) => s + c, 0) };
}

/** True when `u` is `v` or below it in the forest. */
function below(g: Graph, parentEdge: Int32Array, u: number, v: number): boolean {
  for (let w = u; w >= 0;) {
    if (w === v) return true;
    const pe = parentEdge[w] as number;
    if (pe < 0) return false;
    w = (g.edges[pe] as GraphEdge).from;
  }
  return false;
}

/** Wanted nodes some chain of edges reaches from a full send or a present snapshot. */
function reachable(g: Graph): Set<number> {
  const seen = new Set<number>();
  g.nodes.forEach((node, i) => {
    if (node.present) seen.add(i);
  });
  for (let grew = true; grew;) {
    grew = false;
    for (const e of g.edges) {
      if (!seen.has(e.to) && (e.from < 0 || seen.has(e.from))) {
        seen.add(e.to);
        grew = true;
      }
    }
  }
  return seen;
}

/** Checks one search result against the oracle; returns its total cost. */
function checkResult(g: Graph, ctx: CostContext, r: SearchResult, what: string): number {
  const state = recompute(g, ctx, r.parentEdge);
  const canReach = reachable(g);
  g.nodes.forEach((node, v) => {
    if (node.present) assert.equal(r.parentEdge[v], PRESENT, `${what}: node ${v} present`);
    else if (node.wanted)
      assert.equal(r.parentEdge[v] !== DETACHED, canReach.has(v), `${what}: node ${v} attached`);
    assert.equal(r.height[v], state.height[v], `${what}: height of node ${v}`);
    assert.equal(r.chainBytes[v], state.chain[v], `${what}: chain bytes of node ${v}`);
    const c = state.cost[v] as number;
    assert.ok(
      Math.abs((r.cost[v] as number) - c) <= 1e-9 * Math.max(1, c),
      `${what}: cost of ${v}`,
    );
  });
  return state.total;
}

/** Asserts no single re-parent (to an attached parent not below the node) lowers the total cost. */
function checkLocalOptimum(g: Graph, ctx: CostContext, r: SearchResult, what: string): void {
  const total = recompute(g, ctx, r.parentEdge).total;
  g.nodes.forEach((_, v) => {
    const cur = r.parentEdge[v] as number;
    if (cur < 0) return;
    for (const ei of g.inEdges[v] as number[]) {
      const from = (g.edges[ei] as GraphEdge).from;
      if (ei === cur) continue;
      if (from >= 0 && (r.parentEdge[from] === DETACHED || below(g, r.parentEdge, from, v)))
        continue;
      const moved = Int32Array.from(r.parentEdge);
      moved[v] = ei;
      const after = recompute(g, ctx, moved).total;
      assert.ok(
        after >= total - 1e-6 * Math.max(1, total),
        `${what}: moving node ${v} under edge ${ei} would save ${total - after}`,
      );
    }
  });
}

describe('searchPlan on random problems (oracle: costs recomputed from scratch)', () => {
  const cases: [StoreKind, CostContext][] = [
    ['btrfs', costContext({})],
    ['s3', costContext({ destStoresDiffs: true })],
    // A low base height makes the chain term dominate: re-parents move whole subtrees.
    ['s3', costContext({ destStoresDiffs: true, model: { corruptionBaseHeight: 3 } })],
  ];
  for (const [kind, ctx] of cases) {
    it(`${kind}, corruption base height ${ctx.model.corruptionBaseHeight}: consistent, acyclic, locally optimal, never worse than greedy`, () => {
      let moved = 0;
      let beyondFirstPass = 0;
      for (let seed = 1; seed <= 40; seed++) {
        const g = buildGraph(randomInput(seed, kind));
        const greedy = searchPlan(g, ctx, { maxPasses: 0 });
        const onePass = searchPlan(g, ctx, { maxPasses: 1 });
        const best = searchPlan(g, ctx, { maxPasses: 1000 });
        const what = `seed ${seed}`;
        const greedyTotal = checkResult(g, ctx, greedy, `${what} greedy`);
        checkResult(g, ctx, onePass, `${what} one pass`);
        const bestTotal = checkResult(g, ctx, best, what);
        checkLocalOptimum(g, ctx, best, what);
        assert.ok(bestTotal <= greedyTotal + 1e-9 * greedyTotal, `${what}: no worse than greedy`);
        moved += best.parentEdge.filter((pe, v) => pe !== greedy.parentEdge[v]).length;
        if (onePass.parentEdge.some((pe, v) => pe !== best.parentEdge[v])) beyondFirstPass++;
      }
      // The problems exercise the improvement passes, the later passes included.
      assert.ok(moved >= 10, `re-parented nodes: ${moved}`);
      if (kind === 's3')
        assert.ok(beyondFirstPass >= 1, `problems needing a second pass: ${beyondFirstPass}`);
    });
  }
});
