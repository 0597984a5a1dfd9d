import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { planSync } from '../../../src/planner/plan-sync.js';
import { syntheticInput } from '../../../src/planner/synthetic.js';

/** Median wall time of `runs` plans of a synthetic input, in ms. */
function time(
  snapshots: number,
  destKind: 'btrfs' | 's3',
  runs = 3,
): { ms: number; transfers: number } {
  const data = syntheticInput({ snapshots, destKind });
  const times: number[] = [];
  let transfers = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    transfers = planSync(data).transfers.length;
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return { ms: times[runs >> 1] as number, transfers };
}

describe('planner performance', () => {
  for (const destKind of ['btrfs', 's3'] as const) {
    it(`plans 1,000 and 10,000 snapshots to ${destKind} (time reported, judged by the bench)`, (t) => {
      const small = time(1000, destKind);
      const large = time(10000, destKind);
      t.diagnostic(
        `${destKind}: 1,000 snapshots ${small.ms.toFixed(0)} ms; 10,000 snapshots ${large.ms.toFixed(0)} ms`,
      );
      assert.ok(small.transfers >= 500 && large.transfers >= 5000);
    });
  }

  it('is deterministic on synthetic input', () => {
    const one = planSync(syntheticInput({ snapshots: 2000, seed: 7, quotas: true }));
    const two = planSync(syntheticInput({ snapshots: 2000, seed: 7, quotas: true }));
    assert.deepEqual(one, two);
  });
});
