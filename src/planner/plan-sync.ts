/**
 * One planning run: graph, search, then the Plan as data (ordered transfers,
 * keeps, deletes). Pure and deterministic; no I/O, no measuring (see
 * `measure-loop.ts` for the measure-and-replan driver).
 */
import type { Warning } from '../log.js';
import { costContext } from './cost-model.js';
import { buildGraph, compareGen, comparePathUuid } from './graph.js';
import type { GraphEdge } from './graph.js';
import { MinHeap } from './min-heap.js';
import type { Plan, Transfer } from './plan.js';
import { storesDiffs } from './plan-input.js';
import type { DiffOffer, PlanInput } from './plan-input.js';
import { DETACHED, PRESENT, searchPlan } from './plan-search.js';
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
  const r = searchPlan(g, ctx);
  const { nodes, edges } = g;
  const n = nodes.length;
  const warnings: Warning[] = [...g.warnings];
  const edgeOf = (i: number): GraphEdge | undefined => {
    const pe = r.parentEdge[i] as number;
    return pe >= 0 ? edges[pe] : undefined;
  };

  // Needed: wanted and attached, and every ancestor of those.
  const needed = new Uint8Array(n);
  const missing: Volume[] = [];
  for (let i = 0; i < n; i++) {
    const node = nodes[i] as (typeof nodes)[number];
    if (!node.wanted) continue;
    if (r.parentEdge[i] === DETACHED) {
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
      u = edgeOf(u)?.from ?? -1;
    }
  }

  // Parent-first order: Kahn over the chosen forest, oldest ready first.
  const children: number[][] = Array.from({ length: n }, () => []);
  const ready = new MinHeap<number>(
    (a, b) =>
      compareGen((nodes[a] as { volume: Volume }).volume, (nodes[b] as { volume: Volume }).volume) <
      0,
  );
  for (let i = 0; i < n; i++) {
    if (needed[i] === 0) continue;
    const from = edgeOf(i)?.from ?? -1;
    if (from < 0) ready.push(i);
    else (children[from] as number[]).push(i);
  }
  const transfers: Transfer[] = [];
  const keep: Volume[] = [];
  const usedDestKeys = new Set<string>();
  while (ready.size > 0) {
    const i = ready.pop() as number;
    const node = nodes[i] as (typeof nodes)[number];
    const e = edgeOf(i);
    if (r.parentEdge[i] === PRESENT || e?.atDest) {
      keep.push(node.dest ?? node.volume);
      if (e !== undefined) usedDestKeys.add(e.key);
    } else if (e !== undefined) {
      const from = e.from < 0 ? null : (nodes[e.from] as (typeof nodes)[number]);
      transfers.push({
        to: node.volume,
        from: from === null ? null : (from.source ?? from.volume),
        size: e.size,
        estimated: e.estimated,
        store: e.provider,
        height: r.height[i] as number,
        key: e.key,
      });
    }
    for (const c of children[i] as number[]) ready.push(c);
  }

  // Deletes, after everything else.
  let deleteVolumes: Volume[] = [];
  let deleteDiffs: DiffOffer[] = [];
  if (opts.delete && opts.only !== undefined) {
    warnings.push({
      code: 'DELETE_IGNORED',
      message: '--delete deletes nothing when the source is a single snapshot',
    });
  } else if (opts.delete) {
    if (destStoresDiffs) {
      deleteDiffs = g.destDiffs.filter((d) => {
        if (usedDestKeys.has(edgeKey(d.to, d.from))) return false;
        const node = nodes[g.index.get(d.to) as number];
        return !(node !== undefined && g.isExcluded((node.dest ?? node.volume).path));
      });
    } else {
      deleteVolumes = g.destVolumes.filter(
        (v) => !g.sourceUuids.has(v.uuid) && !g.isExcluded(v.path),
      );
    }
  }
  const deleted = new Set(deleteVolumes.map((v) => v.uuid));

  let totalBytes = 0;
  let estimatedBytes = 0;
  for (const t of transfers) {
    totalBytes += t.size;
    if (t.estimated) estimatedBytes += t.size;
  }
  let cost = 0;
  for (let i = 0; i < n; i++) if (needed[i] === 1) cost += r.cost[i] as number;

  return {
    transfers,
    keep: keep.filter((v) => !deleted.has(v.uuid)).sort(comparePathUuid),
    deletes: { volumes: deleteVolumes, diffs: deleteDiffs },
    missing,
    totalBytes,
    estimatedBytes,
    cost,
    destStoresDiffs,
    warnings,
  };
}
