/** The plan as Graphviz DOT, on hand-made plans (no Graphviz here: the integration test runs dot). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dotString, edgeLabel, planToDot } from '../../../src/cli/plan-dot.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import { input, offer, vol } from '../planner/helpers.js';

const MiB = 1024 ** 2;

describe('planToDot', () => {
  const a = vol('home/2024-01-01', 1);
  const b = vol('home/2024-01-02', 2);
  const c = vol('home/"quoted"\\2024-01-03', 3);
  const gone = vol('home/2023-12-31', 0);
  const plan = planSync(
    input({
      source: [a, b, c],
      dest: [a, gone],
      sourceDiffs: [offer(b, a, 12.3 * MiB), offer(c, b, 2 * MiB)],
      options: { delete: true },
    }),
  );
  const dot = planToDot(plan, { source: '/mnt/pool/snaps/', destination: 's3://bkt/x/' });

  it('is one digraph with a source and a destination cluster, labelled with the locations', () => {
    assert.match(dot, /^digraph buttersink_plan \{\n/);
    assert.match(dot, /\}\n$/);
    assert.match(dot, /subgraph cluster_source \{\n {4}label="source: \/mnt\/pool\/snaps\/";/);
    assert.match(dot, /subgraph cluster_destination \{\n {4}label="destination: s3:\/\/bkt\/x\/";/);
  });

  it('draws each transfer as an edge from the source snapshot to the destination, with kind and size', () => {
    assert.ok(
      dot.includes(
        `"s:u:home/2024-01-02" -> "d:u:home/2024-01-02" [label="incremental, 12.3 MiB"];`,
      ),
      dot,
    );
    assert.ok(
      dot.includes(
        `"d:u:home/2024-01-01" -> "d:u:home/2024-01-02" [style=dashed, label="parent"];`,
      ),
      dot,
    );
    assert.equal(dot.match(/ -> /g)?.length, 4, 'two transfers, two parent edges');
  });

  it('puts kept and deleted destination snapshots in the destination cluster', () => {
    const destCluster = dot.slice(dot.indexOf('cluster_destination'), dot.lastIndexOf('  }'));
    assert.match(destCluster, /"d:u:home\/2024-01-01" \[label="home\/2024-01-01"\];/);
    assert.match(
      destCluster,
      /"d:u:home\/2023-12-31" \[label="home\/2023-12-31\\ndelete", style=dotted, color=red\];/,
    );
  });

  it('escapes quotes and backslashes in paths', () => {
    assert.ok(dot.includes('[label="home/\\"quoted\\"\\\\2024-01-03"]'), dot);
    assert.equal(dotString('a"b\\c\nd'), '"a\\"b\\\\c\\nd"');
  });

  it('labels full diffs, and estimated sizes with ≈', () => {
    assert.equal(edgeLabel({ from: null, size: 1024 ** 3, estimated: true }), 'full, ≈1.0 GiB');
    assert.equal(edgeLabel({ from: a, size: 512, estimated: false }), 'incremental, 512 B');
  });

  it('an empty plan is a valid graph with two empty clusters', () => {
    const empty = planToDot(planSync(input({ source: [a], dest: [a] })), {
      source: 'x',
      destination: 'y',
    });
    assert.doesNotMatch(empty, / -> /);
    assert.match(empty, /cluster_source[\s\S]*cluster_destination/);
  });
});
