import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { UsageError } from '../../../src/errors.js';
import { planWithMeasurement } from '../../../src/planner/measure-loop.js';
import type { MeasureRequest } from '../../../src/planner/measure-loop.js';
import type { Volume } from '../../../src/planner/volume.js';
import { edges, input, vol } from './helpers.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** Two parents at the destination; the estimate favours p1, the truth favours p2. */
function twoParents() {
  const p1 = vol('d/p1', 100);
  const p2 = vol('d/p2', 200);
  const w = vol('d/w', 300);
  const estimates: Record<string, number> = { p1: 10 * MiB, p2: 20 * MiB };
  const truth: Record<string, number> = { p1: 100 * MiB, p2: 21 * MiB };
  const name = (v: Volume | null) => (v === null ? 'full' : (v.path.split('/')[1] as string));
  const data = input({
    source: [p1, p2, w],
    dest: [p1, p2],
    estimate: (_to, from) => estimates[name(from)] ?? GiB,
  });
  const calls: string[] = [];
  const measure = async (req: MeasureRequest): Promise<number> => {
    calls.push(`${req.to.path}<-${req.from?.path ?? ''}`);
    return truth[name(req.from)] ?? GiB;
  };
  return { data, measure, calls };
}

describe('planWithMeasurement', () => {
  it('re-plans when measurement changes the best parent', async () => {
    const { data, measure, calls } = twoParents();
    const plan = await planWithMeasurement(data, measure);
    assert.deepEqual(edges(plan), ['d/w<-d/p2']);
    assert.deepEqual(calls, ['d/w<-d/p1', 'd/w<-d/p2']);
    assert.equal(plan.transfers[0]?.size, 21 * MiB);
    assert.equal(plan.transfers[0]?.estimated, false);
    assert.equal(plan.estimatedBytes, 0);
    assert.equal(plan.rounds, 2);
  });

  it('measures nothing with --estimate', async () => {
    const { data, measure, calls } = twoParents();
    const plan = await planWithMeasurement(data, measure, { estimateOnly: true });
    assert.deepEqual(edges(plan), ['d/w<-d/p1']);
    assert.deepEqual(calls, []);
    assert.equal(plan.transfers[0]?.estimated, true);
  });

  it('stops after the round limit with every used edge measured', async () => {
    const { data, measure, calls } = twoParents();
    const plan = await planWithMeasurement(data, measure, { maxRounds: 1 });
    assert.deepEqual(edges(plan), ['d/w<-d/p1']);
    assert.deepEqual(calls, ['d/w<-d/p1']);
    assert.equal(plan.transfers[0]?.size, 100 * MiB);
    assert.equal(plan.transfers[0]?.estimated, false);
  });

  it('accepts a plan whose measured total is within the tolerance', async () => {
    const a = vol('h/a', 1);
    const b = vol('h/b', 2);
    const c = vol('h/c', 3);
    let count = 0;
    const plan = await planWithMeasurement(input({ source: [a, b, c], dest: [a] }), async (req) => {
      count++;
      return Math.round(req.estimate * 1.1);
    });
    assert.equal(count, 2);
    assert.equal(plan.rounds, 1);
    assert.equal(plan.estimatedBytes, 0);
    assert.deepEqual(edges(plan), ['h/b<-h/a', 'h/c<-h/b']);
  });

  it('does not measure sizes that are known already', async () => {
    const a = vol('h/a', 1);
    const b = vol('h/b', 2);
    const plan = await planWithMeasurement(
      { ...input({ source: [a, b], dest: [a] }), measured: new Map([[`${b.uuid}_${a.uuid}`, 5]]) },
      async () => assert.fail('measured again'),
    );
    assert.equal(plan.totalBytes, 5);
    assert.equal(plan.rounds, 0);
  });

  it('rejects a bad probe result and honours the abort signal', async () => {
    const { data } = twoParents();
    await assert.rejects(
      planWithMeasurement(data, async () => Number.NaN),
      UsageError,
    );
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(
      planWithMeasurement(data, async () => 1, { signal: ac.signal }),
      /stop/,
    );
  });
});
