/**
 * Chain-aware retention for a diff store (a bucket): which stored diffs to keep,
 * which to delete (to trash), and which kept snapshots to re-base (upload a new
 * full send for) first. Pure: plain data in, plain data out.
 *
 * A snapshot's restore chain is the stored diffs from a full send up to it; of
 * the chains a bucket offers, the shortest (fewest diffs) is taken. The rules:
 *
 * 1. Every diff on a kept snapshot's chain stays. A dropped snapshot whose diff
 *    is such a link stays restorable as a by-product: it is listed as a `link`,
 *    not as kept. Every other diff is deleted; nothing else is.
 * 2. A chain whose full base the policy drops is re-based: a new full for the
 *    oldest kept snapshot on it, so the old base and the links up to it can go.
 * 3. A chain longer than `maxChain` diffs is re-based at its newest kept
 *    snapshot within reach (the kept snapshot whose chain first grows too long,
 *    else the newest kept one before it): greedy from the oldest, which places
 *    the fewest new fulls.
 * 4. Only a snapshot the source can still send in full (`rebaseable`) can be
 *    re-based; when none on the chain can, the chain stays as it is (a `note`).
 * 5. A kept snapshot with no complete chain (a link already missing) keeps every
 *    diff that leads to it, and a warning says it cannot be restored.
 *
 * The caller uploads the re-bases before deleting anything.
 */
import { edgeKey } from './plan-input.js';
import type { Diff, Volume } from './volume.js';

/** What {@link planChainRetention} decides on. */
export interface ChainRetentionInput<D extends Diff> {
  /** The bucket's snapshots. */
  readonly volumes: readonly Volume[];
  /** The bucket's stored diffs. */
  readonly diffs: readonly D[];
  /** UUIDs of the snapshots to keep (the policy's, protected and undated ones included). */
  readonly keep: ReadonlySet<string>;
  /** UUIDs of the snapshots the source can send as a new full. */
  readonly rebaseable: ReadonlySet<string>;
  /** Longest chain, in diffs (a full is 1), before a re-base is due. */
  readonly maxChain: number;
}

/** A kept snapshot to upload a new full send of, before any delete. */
export interface Rebase {
  readonly volume: Volume;
  /** `base`: its chain's full base was dropped; `long`: its chain was longer than the bound. */
  readonly reason: 'base' | 'long';
  /** Length of the chain it ends (or cuts) before the re-base. */
  readonly chainBefore: number;
}

/** The plan. */
export interface ChainRetentionPlan<D extends Diff> {
  readonly rebases: readonly Rebase[];
  /** Stored diffs that stay, sorted by key. */
  readonly keepDiffs: readonly D[];
  /** Stored diffs to move to trash, sorted by key. */
  readonly deleteDiffs: readonly D[];
  /** Dropped snapshots whose diffs stay as links of a kept chain, by path. */
  readonly links: readonly Volume[];
  /** Dropped snapshots whose every diff is deleted, by path. */
  readonly dropped: readonly Volume[];
  /** Each kept snapshot's chain length after the plan (UUID → diffs; absent: no chain). */
  readonly chainLength: ReadonlyMap<string, number>;
  /** Kept snapshots no chain can restore (one line each). */
  readonly warnings: readonly string[];
  /** Re-bases that were due but impossible (one line each). */
  readonly notes: readonly string[];
}

/** Best chains from the fulls (stored, plus the planned re-bases), by BFS on diff count. */
interface Chains<D> {
  /** UUID → the diff that ends its best chain (null: a planned new full). */
  readonly last: Map<string, D | null>;
  readonly length: Map<string, number>;
}

const byKey = <D extends Diff>(a: D, b: D) => {
  const ka = edgeKey(a.to, a.from);
  const kb = edgeKey(b.to, b.from);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

function bestChains<D extends Diff>(diffs: readonly D[], newFulls: ReadonlySet<string>): Chains<D> {
  const last = new Map<string, D | null>();
  const length = new Map<string, number>();
  const byFrom = new Map<string, D[]>();
  const queue: string[] = [];
  for (const u of [...newFulls].sort()) {
    last.set(u, null);
    length.set(u, 1);
    queue.push(u);
  }
  for (const d of diffs) {
    if (d.from !== null) byFrom.set(d.from, [...(byFrom.get(d.from) ?? []), d]);
    else if (!last.has(d.to)) {
      last.set(d.to, d);
      length.set(d.to, 1);
      queue.push(d.to);
    }
  }
  for (let i = 0; i < queue.length; i++) {
    const u = queue[i] as string;
    for (const d of byFrom.get(u) ?? []) {
      if (last.has(d.to)) continue;
      last.set(d.to, d);
      length.set(d.to, (length.get(u) ?? 0) + 1);
      queue.push(d.to);
    }
  }
  return { last, length };
}

/** The snapshots on `uuid`'s best chain, base first, with the stored diffs it uses. */
function chainOf<D extends Diff>(chains: Chains<D>, uuid: string) {
  const snapshots: string[] = [];
  const diffs: D[] = [];
  let at: string | null = uuid;
  while (at !== null && chains.last.has(at)) {
    snapshots.unshift(at);
    const d: D | null | undefined = chains.last.get(at);
    if (d) diffs.push(d);
    at = d ? d.from : null;
  }
  return { snapshots, diffs };
}

/** The re-base that fixes `uuid`'s chain, or a note why none can. */
function rebaseFor<D extends Diff>(
  input: ChainRetentionInput<D>,
  chains: Chains<D>,
  uuid: string,
): { rebase?: Omit<Rebase, 'volume'> & { uuid: string }; note?: string } | undefined {
  const { snapshots } = chainOf(chains, uuid);
  const base = snapshots[0];
  if (base === undefined) return undefined;
  const can = (u: string) => input.keep.has(u) && input.rebaseable.has(u);
  const chainBefore = snapshots.length;
  if (!input.keep.has(base)) {
    const at = snapshots.slice(1).find(can);
    if (at !== undefined) return { rebase: { uuid: at, reason: 'base', chainBefore } };
    return { note: `its full base is dropped but the source can send none of its kept snapshots` };
  }
  if (chainBefore <= input.maxChain) return undefined;
  const at = snapshots.slice(1).reverse().find(can);
  if (at !== undefined) return { rebase: { uuid: at, reason: 'long', chainBefore } };
  return {
    note: `its chain of ${chainBefore} diffs is longer than ${input.maxChain} but the source can send none of its kept snapshots`,
  };
}

/** Chooses the re-bases (see the module header, rules 2–4). */
function chooseRebases<D extends Diff>(
  input: ChainRetentionInput<D>,
  pathOf: (u: string) => string,
) {
  const rebased = new Map<string, Omit<Rebase, 'volume'>>();
  for (;;) {
    // Notes are made anew each round: a later re-base may fix an earlier one's chain.
    const notes = new Map<string, string>();
    const chains = bestChains(input.diffs, new Set(rebased.keys()));
    const kept = [...input.keep]
      .filter((u) => chains.length.has(u))
      .sort(
        (a, b) =>
          (chains.length.get(a) ?? 0) - (chains.length.get(b) ?? 0) ||
          (pathOf(a) < pathOf(b) ? -1 : 1),
      );
    const fix = kept.find((u) => {
      const found = rebaseFor(input, chains, u);
      if (found?.note !== undefined) notes.set(u, `${pathOf(u)}: ${found.note}; its chain stays`);
      if (!found?.rebase) return false;
      const { uuid, ...why } = found.rebase;
      rebased.set(uuid, why);
      return true;
    });
    if (fix === undefined) return { rebased, notes, chains };
  }
}

/** Every stored diff that leads to `uuid` (backwards, all parents). */
function ancestry<D extends Diff>(diffs: readonly D[], uuid: string): D[] {
  const found = new Set<D>();
  const todo = [uuid];
  for (let i = 0; i < todo.length; i++) {
    for (const d of diffs) {
      if (d.to !== todo[i] || found.has(d)) continue;
      found.add(d);
      if (d.from !== null) todo.push(d.from);
    }
  }
  return [...found];
}

/** Plans retention on a bucket; see the module header for the rules. */
export function planChainRetention<D extends Diff>(
  input: ChainRetentionInput<D>,
): ChainRetentionPlan<D> {
  const byUuid = new Map(input.volumes.map((v) => [v.uuid, v]));
  const pathOf = (u: string) => byUuid.get(u)?.path ?? u;
  const { rebased, notes, chains } = chooseRebases(input, pathOf);
  const needed = new Set<D>();
  const warnings: string[] = [];
  const chainLength = new Map<string, number>();
  for (const u of [...input.keep].sort((a, b) => (pathOf(a) < pathOf(b) ? -1 : 1))) {
    if (!byUuid.has(u)) continue;
    const length = chains.length.get(u);
    if (length === undefined) {
      warnings.push(
        `${pathOf(u)} cannot be restored from this bucket: a diff of its chain is missing; keeping every diff that leads to it`,
      );
      ancestry(input.diffs, u).forEach((d) => needed.add(d));
      continue;
    }
    chainLength.set(u, length);
    chainOf(chains, u).diffs.forEach((d) => needed.add(d));
  }
  const keepDiffs = input.diffs.filter((d) => needed.has(d)).sort(byKey);
  const deleteDiffs = input.diffs.filter((d) => !needed.has(d)).sort(byKey);
  const linked = new Set(keepDiffs.map((d) => d.to));
  const droppedVolumes = input.volumes
    .filter((v) => !input.keep.has(v.uuid))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    rebases: [...rebased].flatMap(([u, why]) => {
      const volume = byUuid.get(u);
      return volume ? [{ volume, ...why }] : [];
    }),
    keepDiffs,
    deleteDiffs,
    links: droppedVolumes.filter((v) => linked.has(v.uuid)),
    dropped: droppedVolumes.filter((v) => !linked.has(v.uuid)),
    chainLength,
    warnings,
    notes: [...notes.values()],
  };
}
