/**
 * Chooses, for every wanted snapshot, the diff that brings it to the
 * destination: a full send, a diff from a parent that is or will be there, or
 * nothing when it is already there. The chosen edges form a forest rooted at
 * full sends and at snapshots already at the destination.
 *
 * The search is a directed Prim: starting from "nothing" and the complete
 * subvolumes already at the destination, it repeatedly attaches the snapshot
 * reachable by the cheapest edge from what is already attached. A parent's
 * state (chain height, chain bytes) is final once attached, so the path-
 * dependent corruption-risk term is exact and no cycle can form. Then bounded
 * passes of local improvement re-parent a snapshot when another attached,
 * non-descendant parent is cheaper, counting the effect on its subtree's
 * costs; this repairs choices Prim made before a better parent was attached.
 * The result is a good, deterministic heuristic, not a proven optimum (the
 * height-dependent costs make the exact problem a constrained arborescence).
 * Cost: O(E log E) for Prim plus O(E) per improvement pass.
 */
import { edgeCost } from './cost-model.js';
import type { CostContext } from './cost-model.js';
import type { Graph, GraphEdge } from './graph.js';
import { MinHeap } from './min-heap.js';

/** `parentEdge` value of a node not attached. */
export const DETACHED = -1;
/** `parentEdge` value of a complete subvolume already at the destination. */
export const PRESENT = -2;

/** The chosen forest, by node index. */
export interface SearchResult {
  /** Edge index bringing each node, or {@link DETACHED} / {@link PRESENT}. */
  readonly parentEdge: Int32Array;
  /** Diffs to apply since the last full send or complete subvolume (0 for present nodes). */
  readonly height: Int32Array;
  /** Bytes of those diffs. */
  readonly chainBytes: Float64Array;
  /** Cost of each node's chosen edge. */
  readonly cost: Float64Array;
}

/** Tuning of the search. */
export interface SearchOptions {
  /** Improvement passes after Prim. Default 4. */
  readonly maxPasses?: number;
}

/** Runs the search. Pure and deterministic: ties go to the lower (path, UUID) rank. */
export function searchPlan(g: Graph, ctx: CostContext, opts: SearchOptions = {}): SearchResult {
  const n = g.nodes.length;
  const edges = g.edges;
  const parentEdge = new Int32Array(n).fill(DETACHED);
  const height = new Int32Array(n);
  const chainBytes = new Float64Array(n);
  const cost = new Float64Array(n);
  const stateOf = (from: number): [number, number] =>
    from < 0 ? [0, 0] : [height[from] as number, chainBytes[from] as number];
  const costOf = (e: GraphEdge, ph: number, pc: number): number =>
    edgeCost(
      {
        size: e.size,
        estimated: e.estimated,
        atDest: e.atDest,
        parentHeight: ph,
        parentChainBytes: pc,
      },
      ctx,
    );
  const attached = (i: number): boolean => parentEdge[i] !== DETACHED;

  interface Item {
    readonly e: number;
    readonly c: number;
  }
  const heap = new MinHeap<Item>((a, b) => {
    if (a.c !== b.c) return a.c < b.c;
    const ea = edges[a.e] as GraphEdge;
    const eb = edges[b.e] as GraphEdge;
    if (ea.to !== eb.to) return ea.to < eb.to;
    return ea.from < eb.from;
  });
  const pushOut = (u: number): void => {
    for (const e of g.outEdges[u] as number[]) {
      const edge = edges[e] as GraphEdge;
      if (!attached(edge.to))
        heap.push({ e, c: costOf(edge, height[u] as number, chainBytes[u] as number) });
    }
  };

  let remaining = 0;
  g.nodes.forEach((node, i) => {
    if (node.present) parentEdge[i] = PRESENT;
    else if (node.wanted) remaining++;
  });
  for (const e of g.rootEdges) heap.push({ e, c: costOf(edges[e] as GraphEdge, 0, 0) });
  g.nodes.forEach((node, i) => {
    if (node.present) pushOut(i);
  });
  while (remaining > 0 && heap.size > 0) {
    const { e, c } = heap.pop() as Item;
    const edge = edges[e] as GraphEdge;
    if (attached(edge.to)) continue;
    const [ph, pc] = stateOf(edge.from);
    parentEdge[edge.to] = e;
    height[edge.to] = ph + 1;
    chainBytes[edge.to] = pc + edge.size;
    cost[edge.to] = c;
    if ((g.nodes[edge.to] as { wanted: boolean }).wanted) remaining--;
    pushOut(edge.to);
  }

  improve(g, ctx, { parentEdge, height, chainBytes, cost }, costOf, opts.maxPasses ?? 4);
  return { parentEdge, height, chainBytes, cost };
}

/** What the improvement passes share: the graph, the tree found so far, and each node's children in it. */
interface Tree {
  g: Graph;
  r: SearchResult;
  costOf: (e: GraphEdge, ph: number, pc: number) => number;
  children: number[][];
}

/**
 * Local search after the greedy tree: moves each node under the in-edge that
 * lowers the total cost most (counting the subtree below when costs depend on
 * the chain), never under its own descendant; up to `maxPasses` passes, fewer
 * once a pass changes nothing.
 */
function improve(
  g: Graph,
  ctx: CostContext,
  r: SearchResult,
  costOf: (e: GraphEdge, ph: number, pc: number) => number,
  maxPasses: number,
): void {
  const tree: Tree = { g, r, costOf, children: childLists(g, r.parentEdge) };
  for (let pass = 0; pass < maxPasses; pass++) {
    let changed = false;
    for (let v = 0; v < g.nodes.length; v++) {
      if ((r.parentEdge[v] as number) < 0) continue;
      const best = bestParentEdge(tree, ctx, v);
      if (best < 0) continue;
      moveUnder(tree, v, best);
      changed = true;
    }
    if (!changed) break;
  }
}

/** Each node's children in the tree `parentEdge` describes. */
function childLists(g: Graph, parentEdge: Int32Array): number[][] {
  const children: number[][] = Array.from({ length: g.nodes.length }, () => []);
  for (let v = 0; v < g.nodes.length; v++) {
    const pe = parentEdge[v] as number;
    if (pe >= 0) {
      const f = (g.edges[pe] as GraphEdge).from;
      if (f >= 0) (children[f] as number[]).push(v);
    }
  }
  return children;
}

/** The in-edge of attached `v` that lowers the total cost most, or -1 when none does. */
function bestParentEdge(t: Tree, ctx: CostContext, v: number): number {
  const { parentEdge, height, chainBytes, cost } = t.r;
  const cur = parentEdge[v] as number;
  const eps = 1e-9 * Math.max(1, cost[v] as number);
  let best = -1;
  let bestDelta = -eps;
  for (const ei of t.g.inEdges[v] as number[]) {
    if (ei === cur) continue;
    const e = t.g.edges[ei] as GraphEdge;
    if (e.from >= 0 && parentEdge[e.from] === DETACHED) continue;
    const ph = e.from < 0 ? 0 : (height[e.from] as number);
    const pc = e.from < 0 ? 0 : (chainBytes[e.from] as number);
    let delta = t.costOf(e, ph, pc) - (cost[v] as number);
    if (ctx.destStoresDiffs) delta += subtreeDelta(t, v, ph + 1, pc + e.size);
    if (delta >= bestDelta) continue;
    if (e.from >= 0 && isAncestor(t, v, e.from)) continue;
    best = ei;
    bestDelta = delta;
  }
  return best;
}

/** True when `a` is `of` or one of its ancestors. */
function isAncestor(t: Tree, a: number, of: number): boolean {
  for (let u = of; u >= 0;) {
    if (u === a) return true;
    const pe = t.r.parentEdge[u] as number;
    if (pe < 0) return false;
    u = (t.g.edges[pe] as GraphEdge).from;
  }
  return false;
}

/** Change of the costs below `v` if `v` took state (h, c). Only matters when costs depend on the chain. */
function subtreeDelta(t: Tree, v: number, h: number, c: number): number {
  let delta = 0;
  const stack: [number, number, number][] = [[v, h, c]];
  while (stack.length > 0) {
    const [u, uh, uc] = stack.pop() as [number, number, number];
    for (const w of t.children[u] as number[]) {
      const e = t.g.edges[t.r.parentEdge[w] as number] as GraphEdge;
      delta += t.costOf(e, uh, uc) - (t.r.cost[w] as number);
      stack.push([w, uh + 1, uc + e.size]);
    }
  }
  return delta;
}

/** Re-parents `v` by in-edge `edge`, then recomputes the state of `v` and everything below it. */
function moveUnder(t: Tree, v: number, edge: number): void {
  const { parentEdge } = t.r;
  const oldFrom = (t.g.edges[parentEdge[v] as number] as GraphEdge).from;
  if (oldFrom >= 0) {
    const siblings = t.children[oldFrom] as number[];
    siblings.splice(siblings.indexOf(v), 1);
  }
  const newFrom = (t.g.edges[edge] as GraphEdge).from;
  if (newFrom >= 0) (t.children[newFrom] as number[]).push(v);
  parentEdge[v] = edge;
  restate(t, v);
}

/** Recomputes height, chain bytes and cost of `v` and its subtree from their parents. */
function restate(t: Tree, v: number): void {
  const { parentEdge, height, chainBytes, cost } = t.r;
  const stack = [v];
  while (stack.length > 0) {
    const u = stack.pop() as number;
    const e = t.g.edges[parentEdge[u] as number] as GraphEdge;
    const ph = e.from < 0 ? 0 : (height[e.from] as number);
    const pc = e.from < 0 ? 0 : (chainBytes[e.from] as number);
    height[u] = ph + 1;
    chainBytes[u] = pc + e.size;
    cost[u] = t.costOf(e, ph, pc);
    for (const w of t.children[u] as number[]) stack.push(w);
  }
}
