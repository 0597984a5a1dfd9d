/**
 * One planning run: graph, search, then the Plan as data (ordered transfers,
 * keeps, deletes). Pure and deterministic; no I/O, no measuring (see
 * `measure-loop.ts` for the measure-and-replan driver).
 */
import type { Warning } from '../log.js';
import { costContext } from './cost-model.js';
import { buildGraph, compareGen, comparePathUuid } from './graph.js';
import type { Graph, GraphEdge, GraphNode } from './graph.js';
import { MinHeap } from './min-heap.js';
import { byteTotals } from './plan.js';
import type { Plan, Transfer } from './plan.js';
import { storesDiffs } from './plan-input.js';
import type { DiffOffer, PlanInput } from './plan-input.js';
import { DETACHED, PRESENT, searchPlan } from './plan-search.js';
import type { SearchResult } from './plan-search.js';
import { edgeKey } from './plan-input.js';
import type { Volume } from './volume.js';

/**
 * Plans a sync from `input.source` to `input.dest`: for every wanted snapshot,
 * keep it (already at the destination), or send it full or as a diff from a
 * parent that is or will be at the destination, minimising the total cost
 * (`cost-model.ts`). Transfers come parent first; among those ready, oldest
 * generation first, then by path. Throws `UsageError` when `options.only`
 * names no source snapshot.
 */
export function planSync(input: PlanInput): Plan {
  const opts = input.options ?? {};
  const destStoresDiffs = storesDiffs(input.dest.kind);
  const g = buildGraph(input);
  const ctx = costContext({
    model: opts.costModel,
    deleting: opts.delete,
    destStoresDiffs,
    willMeasure: opts.willMeasure,
  });
  const chosen = new Chosen(g, searchPlan(g, ctx));
  const warnings: Warning[] = [...g.warnings];
  const { needed, missing } = neededNodes(chosen, warnings);
  const { transfers, keep, usedDestKeys } = orderTransfers(chosen, needed);
  const deletes = planDeletes(g, input, usedDestKeys, warnings);
  const deleted = new Set(deletes.volumes.map((v) => v.uuid));
  let cost = 0;
  for (let i = 0; i < g.nodes.length; i++) if (needed[i] === 1) cost += chosen.r.cost[i] as number;
  return {
    transfers,
    keep: keep.filter((v) => !deleted.has(v.uuid)).sort(comparePathUuid),
    deletes,
    missing,
    ...byteTotals(transfers),
    cost,
    destStoresDiffs,
    warnings,
  };
}

/** The graph with the search's choice: each node's parent edge. */
class Chosen {
  constructor(
    readonly g: Graph,
    readonly r: SearchResult,
  ) {}

  /** The edge chosen to create node `i`, if any (none: present, detached, or kept). */
  edgeOf(i: number): GraphEdge | undefined {
    const pe = this.r.parentEdge[i] as number;
    return pe >= 0 ? this.g.edges[pe] : undefined;
  }
}

/**
 * Needed: wanted and attached, and every ancestor of those. A wanted node the
 * search could not attach is `missing` (with an UNREACHABLE warning).
 */
function neededNodes(
  chosen: Chosen,
  warnings: Warning[],
): { needed: Uint8Array; missing: Volume[] } {
  const { nodes } = chosen.g;
  const needed = new Uint8Array(nodes.length);
  const missing: Volume[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as GraphNode;
    if (!node.wanted) continue;
    if (chosen.r.parentEdge[i] === DETACHED) {
      missing.push(node.volume);
      warnings.push({
        code: 'UNREACHABLE',
        message: `no available diff can create ${node.volume.path}; skipping it`,
        details: { uuid: node.uuid, path: node.volume.path },
      });
      continue;
    }
    for (let u = i; u >= 0 && needed[u] === 0;) {
      needed[u] = 1;
      u = chosen.edgeOf(u)?.from ?? -1;
    }
  }
  return { needed, missing };
}

/**
 * Parent-first order: Kahn over the chosen forest, oldest ready first. Each needed
 * node is kept (present, or its edge is at the destination) or transferred.
 */
function orderTransfers(
  chosen: Chosen,
  needed: Uint8Array,
): { transfers: Transfer[]; keep: Volume[]; usedDestKeys: Set<string> } {
  const { nodes } = chosen.g;
  const children: number[][] = Array.from({ length: nodes.length }, () => []);
  const ready = new MinHeap<number>(
    (a, b) => compareGen((nodes[a] as GraphNode).volume, (nodes[b] as GraphNode).volume) < 0,
  );
  for (let i = 0; i < nodes.length; i++) {
    if (needed[i] === 0) continue;
    const from = chosen.edgeOf(i)?.from ?? -1;
    if (from < 0) ready.push(i);
    else (children[from] as number[]).push(i);
  }
  const transfers: Transfer[] = [];
  const keep: Volume[] = [];
  const usedDestKeys = new Set<string>();
  while (ready.size > 0) {
    const i = ready.pop() as number;
    const node = nodes[i] as GraphNode;
    const e = chosen.edgeOf(i);
    if (chosen.r.parentEdge[i] === PRESENT || e?.atDest) {
      keep.push(node.dest ?? node.volume);
      if (e !== undefined) usedDestKeys.add(e.key);
    } else if (e !== undefined) {
      const from = e.from < 0 ? null : (nodes[e.from] as GraphNode);
      transfers.push({
        to: node.volume,
        from: from === null ? null : (from.source ?? from.volume),
        size: e.size,
        estimated: e.estimated,
        store: e.provider,
        height: chosen.r.height[i] as number,
        key: e.key,
      });
    }
    for (const c of children[i] as number[]) ready.push(c);
  }
  return { transfers, keep, usedDestKeys };
}

/**
 * What `--delete` removes, after everything else: stored diffs no transfer or keep
 * uses, or destination snapshots no longer in the source; excluded paths never.
 */
function planDeletes(
  g: Graph,
  input: PlanInput,
  usedDestKeys: ReadonlySet<string>,
  warnings: Warning[],
): { volumes: Volume[]; diffs: DiffOffer[] } {
  const opts = input.options ?? {};
  if (opts.delete && opts.only !== undefined) {
    warnings.push({
      code: 'DELETE_IGNORED',
      message: '--delete deletes nothing when the source is a single snapshot',
    });
    return { volumes: [], diffs: [] };
  }
  if (!opts.delete) return { volumes: [], diffs: [] };
  if (storesDiffs(input.dest.kind)) {
    const diffs = g.destDiffs.filter((d) => {
      if (usedDestKeys.has(edgeKey(d.to, d.from))) return false;
      const node = g.nodes[g.index.get(d.to) as number];
      return !(node !== undefined && g.isExcluded((node.dest ?? node.volume).path));
    });
    return { volumes: [], diffs };
  }
  const volumes = g.destVolumes.filter((v) => !g.sourceUuids.has(v.uuid) && !g.isExcluded(v.path));
  return { volumes, diffs: [] };
}
