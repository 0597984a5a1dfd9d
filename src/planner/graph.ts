/**
 * Builds the planning graph from a {@link PlanInput}: nodes are the snapshots
 * wanted at the destination plus those the destination already has (complete
 * subvolumes, or snapshots rebuildable from stored diffs); edges are the diffs
 * some store can provide.
 *
 * A btrfs/ssh source can send any diff, but the planner never enumerates n²
 * pairs. Candidate parents of a wanted snapshot are taken within its families
 * (snapshots sharing its `parentUuid`, or its directory), sorted by generation:
 * the `k` nearest usable neighbours on each side, the nearest one the
 * destination already has on each side, and its own `parentUuid` when that is a
 * usable snapshot. That keeps O(n·k) edges. A parent is usable when the source
 * has it (it must send from it) and it is, or will be, at the destination.
 */
import type { Warning } from '../log.js';
import { LocationError } from '../errors.js';
import { estimateDiffSize, estimateFullSize, familyStats, LONE_FAMILY } from './estimate.js';
import type { FamilyStats } from './estimate.js';
import { canSendAnyDiff, edgeKey, storesDiffs } from './plan-input.js';
import type { DiffOffer, DiffProvider, PlanInput } from './plan-input.js';
import type { DiffSize, Volume } from './volume.js';

/** A snapshot in the graph. */
export interface GraphNode {
  readonly uuid: string;
  /** The volume to show: the source's when the source has it, else the destination's. */
  readonly volume: Volume;
  /** The source's volume, when the source has this snapshot. */
  readonly source: Volume | undefined;
  /** The destination's volume, when the destination lists this snapshot. */
  readonly dest: Volume | undefined;
  /** Wanted at the destination (a source snapshot, not excluded). */
  readonly wanted: boolean;
  /** A complete subvolume already at a subvolume-storing destination: a free parent. */
  readonly present: boolean;
}

/** A diff some store can provide. `from === -1`: a full send. */
export interface GraphEdge extends DiffSize {
  readonly key: string;
  readonly to: number;
  readonly from: number;
  readonly provider: DiffProvider;
  /** The destination already holds it. */
  readonly atDest: boolean;
}

/** The graph, with adjacency by node index (nodes sorted by path, then UUID). */
export interface Graph {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  readonly inEdges: readonly (readonly number[])[];
  readonly outEdges: readonly (readonly number[])[];
  /** Full sends (edges from no parent). */
  readonly rootEdges: readonly number[];
  readonly index: ReadonlyMap<string, number>;
  /** UUIDs of every source volume (wanted or not). */
  readonly sourceUuids: ReadonlySet<string>;
  /** Destination volumes, deduplicated, sorted by path. */
  readonly destVolumes: readonly Volume[];
  /** Diffs the destination stores (diff stores only), in input order. */
  readonly destDiffs: readonly DiffOffer[];
  /** Tests a path against the exclusions. */
  readonly isExcluded: (path: string) => boolean;
  readonly warnings: readonly Warning[];
}

/** Order of volumes for ties and display: path, then UUID. */
export function comparePathUuid(a: Volume, b: Volume): number {
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  if (a.uuid !== b.uuid) return a.uuid < b.uuid ? -1 : 1;
  return 0;
}

/** Order by generation (unknown last), then path, then UUID. */
export function compareGen(a: Volume, b: Volume): number {
  const ga = a.gen ?? Number.POSITIVE_INFINITY;
  const gb = b.gen ?? Number.POSITIVE_INFINITY;
  if (ga !== gb) return ga < gb ? -1 : 1;
  return comparePathUuid(a, b);
}

function dedupe(volumes: readonly Volume[], side: string, warnings: Warning[]): Volume[] {
  const byUuid = new Map<string, Volume>();
  for (const v of [...volumes].sort(comparePathUuid)) {
    const seen = byUuid.get(v.uuid);
    if (seen === undefined) byUuid.set(v.uuid, v);
    else
      warnings.push({
        code: 'DUPLICATE_UUID',
        message: `${side}: ${v.path} has the same UUID as ${seen.path}; ignoring it`,
        details: { uuid: v.uuid, path: v.path, kept: seen.path },
      });
  }
  return [...byUuid.values()];
}

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function selectWanted(
  source: readonly Volume[],
  only: string | undefined,
  isExcluded: (p: string) => boolean,
): Set<string> {
  if (only === undefined)
    return new Set(source.filter((v) => !isExcluded(v.path)).map((v) => v.uuid));
  const hit = source.find((v) => v.uuid === only) ?? source.find((v) => v.path === only);
  if (hit === undefined) {
    throw new LocationError('SNAPSHOT_NOT_FOUND', `snapshot '${only}' not found in the source`);
  }
  return new Set([hit.uuid]);
}

/** Builds the graph. Pure and deterministic; throws a {@link LocationError} for an `only` not in the source. */
export function buildGraph(input: PlanInput): Graph {
  const opts = input.options ?? {};
  const warnings: Warning[] = [];
  const isExcluded = excluder(opts.exclude ?? []);
  const destDiffStore = storesDiffs(input.dest.kind);
  const sourceVols = dedupe(input.source.volumes, 'source', warnings);
  const destVols = dedupe(input.dest.volumes, 'destination', warnings);
  const sourceBy = new Map(sourceVols.map((v) => [v.uuid, v]));
  const wanted = selectWanted(sourceVols, opts.only, isExcluded);
  const { nodes, present } = graphNodes(input, wanted, sourceBy, destVols);
  const edges = new EdgeList(nodes, input.measured ?? new Map<string, number>());

  // Edges, deduplicated by key: the destination's own first, then offers, then generated.
  const destDiffs = destDiffStore ? [...(input.dest.diffs ?? [])] : [];
  for (const d of destDiffs) {
    const to = edges.index.get(d.to) as number;
    const from = d.from === null ? -1 : (edges.index.get(d.from) as number);
    edges.add({ to, from, size: d.size, estimated: d.estimated, provider: 'dest', atDest: true });
  }
  // A wanted snapshot that is a complete subvolume at the destination needs no edge.
  const needsEdges = (uuid: string): boolean => wanted.has(uuid) && !present.has(uuid);
  addSourceOffers(input, edges, needsEdges, sourceBy);
  if (canSendAnyDiff(input.source.kind)) {
    // Snapshots the destination has, complete or rebuildable: preferred candidate parents.
    const atDest = new Set([...present, ...destDiffs.map((d) => d.to)]);
    const k = Math.max(0, Math.floor(opts.neighbours ?? 2));
    generateCandidates(atDest, sourceVols, edges.index, needsEdges, k, (to, from, stats) =>
      addEstimated(input, edges, sourceBy, { to, from, stats }),
    );
  }
  return {
    nodes,
    edges: edges.edges,
    ...adjacency(nodes.length, edges.edges),
    index: edges.index,
    sourceUuids: new Set(sourceBy.keys()),
    destVolumes: destVols,
    destDiffs,
    isExcluded,
    warnings,
  };
}

/** Tests a path against the exclusion patterns (their `g`/`y` flags dropped: `test` keeps no state). */
function excluder(exclude: readonly RegExp[]): (path: string) => boolean {
  const patterns = exclude.map((r) => new RegExp(r.source, r.flags.replace(/[gy]/g, '')));
  return (path: string): boolean => patterns.some((r) => r.test(path));
}

/**
 * The nodes: the wanted snapshots plus what the destination has (the ends of its
 * stored diffs, or its complete subvolumes: `present`), sorted by path, then UUID.
 */
function graphNodes(
  input: PlanInput,
  wanted: ReadonlySet<string>,
  sourceBy: ReadonlyMap<string, Volume>,
  destVols: readonly Volume[],
): { nodes: GraphNode[]; present: Set<string> } {
  const destBy = new Map(destVols.map((v) => [v.uuid, v]));
  const present = new Set<string>();
  const uuids = new Set<string>(wanted);
  if (storesDiffs(input.dest.kind)) {
    for (const d of input.dest.diffs ?? []) {
      uuids.add(d.to);
      if (d.from !== null) uuids.add(d.from);
    }
  } else {
    for (const v of destVols) {
      uuids.add(v.uuid);
      present.add(v.uuid);
    }
  }
  const nodes: GraphNode[] = [...uuids]
    .map((uuid) => {
      const source = sourceBy.get(uuid);
      const dest = destBy.get(uuid);
      return {
        uuid,
        volume: source ?? dest ?? { uuid, path: uuid },
        source,
        dest,
        wanted: wanted.has(uuid),
        present: present.has(uuid),
      };
    })
    .sort((a, b) => comparePathUuid(a.volume, b.volume));
  return { nodes, present };
}

/** The edges being collected, deduplicated by key (the first added wins). */
class EdgeList {
  readonly edges: GraphEdge[] = [];
  readonly index: ReadonlyMap<string, number>;
  private readonly byKey = new Map<string, number>();

  constructor(
    private readonly nodes: readonly GraphNode[],
    private readonly measured: ReadonlyMap<string, number>,
  ) {
    this.index = new Map(nodes.map((n, i) => [n.uuid, i]));
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  add(e: Omit<GraphEdge, 'key'>): void {
    const key = edgeKey(
      (this.nodes[e.to] as GraphNode).uuid,
      e.from < 0 ? null : (this.nodes[e.from] as GraphNode).uuid,
    );
    if (this.byKey.has(key)) return;
    this.byKey.set(key, this.edges.length);
    this.edges.push({ key, ...e });
  }

  /** A measured size for `key` when there is one, else the given size. */
  sizeOf(key: string, size: number, estimated: boolean): DiffSize {
    const m = this.measured.get(key);
    return m === undefined ? { size, estimated } : { size: m, estimated: false };
  }
}

/** The diffs the source offers (in key order) for the snapshots that need edges. */
function addSourceOffers(
  input: PlanInput,
  edges: EdgeList,
  needsEdges: (uuid: string) => boolean,
  sourceBy: ReadonlyMap<string, Volume>,
): void {
  const destDiffStore = storesDiffs(input.dest.kind);
  const sourceOffers = [...(input.source.diffs ?? [])]
    .map((d) => ({ d, key: edgeKey(d.to, d.from) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ d }) => d);
  for (const d of sourceOffers) {
    if (!needsEdges(d.to)) continue;
    const from = d.from === null ? -1 : edges.index.get(d.from);
    if (from === undefined) continue;
    // A btrfs source can only send from a parent it has.
    if (d.from !== null && canSendAnyDiff(input.source.kind) && !sourceBy.has(d.from)) continue;
    const s = edges.sizeOf(edgeKey(d.to, d.from), d.size, d.estimated);
    edges.add({
      to: edges.index.get(d.to) as number,
      from,
      ...s,
      provider: 'source',
      atDest: d.atDest && destDiffStore,
    });
  }
}

/** A generated candidate: the source's own estimate if valid, else the planner's policy. */
function addEstimated(
  input: PlanInput,
  edges: EdgeList,
  sourceBy: ReadonlyMap<string, Volume>,
  c: { to: string; from: string | null; stats: FamilyStats },
): void {
  const toVol = sourceBy.get(c.to) as Volume;
  const fromVol = c.from === null ? null : (sourceBy.get(c.from) as Volume);
  const key = edgeKey(c.to, c.from);
  if (edges.has(key)) return;
  const custom = input.source.estimate?.(toVol, fromVol);
  const estimate =
    custom !== undefined && Number.isFinite(custom) && custom >= 0
      ? custom
      : fromVol === null
        ? estimateFullSize(toVol, c.stats)
        : estimateDiffSize(toVol, fromVol, c.stats);
  edges.add({
    to: edges.index.get(c.to) as number,
    from: c.from === null ? -1 : (edges.index.get(c.from) as number),
    ...edges.sizeOf(key, estimate, true),
    provider: 'source',
    atDest: false,
  });
}

/** Edge indices into and out of each node, and the full sends. */
function adjacency(
  nodeCount: number,
  edges: readonly GraphEdge[],
): Pick<Graph, 'inEdges' | 'outEdges' | 'rootEdges'> {
  const inEdges: number[][] = Array.from({ length: nodeCount }, () => []);
  const outEdges: number[][] = Array.from({ length: nodeCount }, () => []);
  const rootEdges: number[] = [];
  edges.forEach((e, i) => {
    (inEdges[e.to] as number[]).push(i);
    if (e.from < 0) rootEdges.push(i);
    else (outEdges[e.from] as number[]).push(i);
  });
  return { inEdges, outEdges, rootEdges };
}

/**
 * Calls `emit(to, from, stats)` for the full send and the candidate parents of
 * every wanted snapshot a btrfs/ssh source must send, family by family in a
 * deterministic order. O(n·k) calls.
 */
function generateCandidates(
  atDest: ReadonlySet<string>,
  sourceVols: readonly Volume[],
  index: ReadonlyMap<string, number>,
  needsEdges: (uuid: string) => boolean,
  k: number,
  emit: (to: string, from: string | null, stats: FamilyStats) => void,
): void {
  const families = new Map<string, Volume[]>();
  const join = (key: string, v: Volume) => {
    const f = families.get(key);
    if (f === undefined) families.set(key, [v]);
    else f.push(v);
  };
  for (const v of sourceVols) {
    join(`dir:${dirname(v.path)}`, v);
    if (v.parentUuid !== undefined) join(`parent:${v.parentUuid}`, v);
  }
  const keys = [...families.keys()].sort();
  const statsOf = new Map(keys.map((key) => [key, familyStats(families.get(key) as Volume[])]));
  // Full sends first, sized with the directory family's stats.
  for (const v of sourceVols) {
    if (needsEdges(v.uuid))
      emit(v.uuid, null, statsOf.get(`dir:${dirname(v.path)}`) ?? LONE_FAMILY);
  }
  const sourceBy = new Map(sourceVols.map((v) => [v.uuid, v]));
  for (const key of keys) {
    const members = families.get(key) as Volume[];
    // A family of one has no neighbours, but still offers its parent UUID's snapshot.
    const stats = statsOf.get(key) as FamilyStats;
    const usable = members.filter((v) => index.has(v.uuid)).sort(compareGen);
    const n = usable.length;
    // Nearest member the destination has, on each side, by position.
    const prevPresent = new Array<number>(n);
    const nextPresent = new Array<number>(n);
    let last = -1;
    for (let i = 0; i < n; i++) {
      prevPresent[i] = last;
      if (atDest.has((usable[i] as Volume).uuid)) last = i;
    }
    last = -1;
    for (let i = n - 1; i >= 0; i--) {
      nextPresent[i] = last;
      if (atDest.has((usable[i] as Volume).uuid)) last = i;
    }
    for (let i = 0; i < n; i++) {
      const v = usable[i] as Volume;
      if (!needsEdges(v.uuid)) continue;
      for (let j = Math.max(0, i - k); j <= Math.min(n - 1, i + k); j++) {
        if (j !== i) emit(v.uuid, (usable[j] as Volume).uuid, stats);
      }
      for (const j of [prevPresent[i] as number, nextPresent[i] as number]) {
        if (j >= 0) emit(v.uuid, (usable[j] as Volume).uuid, stats);
      }
      if (v.parentUuid !== undefined && index.has(v.parentUuid) && sourceBy.has(v.parentUuid)) {
        emit(v.uuid, v.parentUuid, stats);
      }
    }
  }
}
