/**
 * The plan as a Graphviz DOT graph (`buttersink -n --plan-format dot`), for
 * `dot -Tsvg`: snapshots are nodes, grouped in a source and a destination
 * cluster; each planned diff is an edge from the source snapshot to where it
 * lands, labelled full or incremental with its size (`≈` when estimated); a
 * dashed edge inside the destination shows the parent an incremental diff
 * applies to. Snapshots kept at the destination are plain nodes, snapshots
 * `-d` would delete are crossed out (dotted, "delete"), snapshots no diff can
 * create are shown in the source with "missing". Pure: plan in, text out.
 */
import { formatBytes } from '../format.js';
import type { Plan, Transfer } from '../planner/plan.js';
import type { Volume } from '../planner/volume.js';

/** Labels of the two clusters: the locations as the user typed them. */
export interface DotLabels {
  source: string;
  destination: string;
}

/** A DOT double-quoted string: backslashes, quotes and line breaks escaped. */
export function dotString(s: string): string {
  return `"${s
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\r?\n|\r/g, '\\n')}"`;
}

/** The node id of snapshot `uuid` in the source (`s:`) or destination (`d:`) cluster. */
function id(side: 's' | 'd', uuid: string): string {
  return dotString(`${side}:${uuid}`);
}

/** `full, 1.0 GiB` / `incremental, ≈12.3 MiB`. */
export function edgeLabel(t: Pick<Transfer, 'from' | 'size' | 'estimated'>): string {
  return `${t.from === null ? 'full' : 'incremental'}, ${t.estimated ? '≈' : ''}${formatBytes(t.size)}`;
}

/** A node line; `note` is a second label line (`delete`, `missing: no diff`). */
function node(side: 's' | 'd', v: Volume, attrs: string[] = [], note?: string): string {
  const label = dotString(note === undefined ? v.path : `${v.path}\n${note}`);
  return `    ${id(side, v.uuid)} [${[`label=${label}`, ...attrs].join(', ')}];`;
}

/** The plan as a DOT digraph; see the module header. */
export function planToDot(plan: Plan, labels: DotLabels): string {
  const transferred = new Set(plan.transfers.map((t) => t.to.uuid));
  const source = [
    ...plan.transfers.map((t) => node('s', t.to)),
    ...plan.missing.map((v) => node('s', v, ['color=red'], 'missing: no diff')),
  ];
  const dest = [
    ...plan.keep.filter((v) => !transferred.has(v.uuid)).map((v) => node('d', v)),
    ...plan.transfers.map((t) => node('d', t.to, ['style=dashed'])),
    ...plan.deletes.volumes.map((v) => node('d', v, ['style=dotted', 'color=red'], 'delete')),
  ];
  const edges = plan.transfers.flatMap((t) => [
    `  ${id('s', t.to.uuid)} -> ${id('d', t.to.uuid)} [label=${dotString(edgeLabel(t))}];`,
    ...(t.from === null
      ? []
      : [`  ${id('d', t.from.uuid)} -> ${id('d', t.to.uuid)} [style=dashed, label="parent"];`]),
  ]);
  // A parent that is neither kept nor transferred (it stays in the source) still needs a node.
  const known = new Set([...plan.keep, ...plan.transfers.map((t) => t.to)].map((v) => v.uuid));
  const parents = new Map(
    plan.transfers.flatMap((t) =>
      t.from && !known.has(t.from.uuid) ? [[t.from.uuid, t.from]] : [],
    ),
  );
  dest.push(...[...parents.values()].map((v) => node('d', v, ['color=gray'])));
  return [
    'digraph buttersink_plan {',
    '  rankdir=LR;',
    '  node [shape=box, fontname="sans-serif"];',
    '  edge [fontname="sans-serif"];',
    '  subgraph cluster_source {',
    `    label=${dotString(`source: ${labels.source}`)};`,
    ...source,
    '  }',
    '  subgraph cluster_destination {',
    `    label=${dotString(`destination: ${labels.destination}`)};`,
    ...dest,
    '  }',
    ...edges,
    '}',
    '',
  ].join('\n');
}
