import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { formatBytes } from '../../../src/format.js';
import { formatPlan, planToJSON } from '../../../src/planner/plan.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import { input, offer, vol } from './helpers.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('formatBytes', () => {
  it('uses binary units with one decimal', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1024), '1.0 KiB');
    assert.equal(formatBytes(12.3 * MiB), '12.3 MiB');
    assert.equal(formatBytes(1024 * 1024 - 1), '1.0 MiB');
    assert.equal(formatBytes(-2 * GiB), '-2.0 GiB');
  });
});

describe('formatPlan / planToJSON', () => {
  const a = vol('home/2024-01-01', 1);
  const b = vol('home/2024-01-02', 2);
  const c = vol('home/2024-01-03', 3);
  const gone = vol('home/2023-12-31', 0);
  const plan = planSync(
    input({
      source: [a, b, c],
      dest: [a, gone],
      sourceDiffs: [offer(b, a, 12.3 * MiB)],
      options: { delete: true },
    }),
  );

  it('prints a summary and one line per transfer', () => {
    const text = formatPlan(plan);
    const lines = text.split('\n');
    assert.match(
      lines[0] ?? '',
      /^Optimal synchronization: 2 transfers \(0 full, 2 incremental\), [\d.]+ MiB \(estimated\)$/,
    );
    assert.equal(lines[1], '  home/2024-01-02 from home/2024-01-01 (12.3 MiB)');
    assert.match(
      lines[2] ?? '',
      /^ {2}home\/2024-01-03 from home\/2024-01-02 \([\d.]+ MiB, estimated\)$/,
    );
    assert.equal(lines[3], 'Keep 1 snapshot already at the destination');
    assert.equal(lines[4], 'Delete home/2023-12-31');
  });

  it('says when there is nothing to do', () => {
    const idle = planSync(input({ source: [a], dest: [a] }));
    assert.equal(
      formatPlan(idle),
      'Optimal synchronization: nothing to transfer\nKeep 1 snapshot already at the destination',
    );
  });

  it('round-trips through JSON as plain data', () => {
    const json = planToJSON(plan);
    assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
    assert.equal(json.transfers.length, 2);
    assert.deepEqual(json.transfers[0]?.from, { uuid: a.uuid, path: a.path, gen: 1 });
    assert.deepEqual(
      json.deletes.volumes.map((v) => v.path),
      ['home/2023-12-31'],
    );
    assert.equal(json.rounds, 0);
  });
});
