import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { UsageError } from '../../../src/errors.js';
import { planWithMeasurement } from '../../../src/planner/measure-loop.js';
import type { MeasureRequest } from '../../../src/planner/measure-loop.js';
import type { Volume } from '../../../src/planner/volume.js';
import { edges, input, offer, vol } from './helpers.js';

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

describe('planWithMeasurement: what it measures and when it stops', () => {
  it('measures only estimated edges and keeps the sizes it was given (last round too)', async () => {
    const a = vol('h/a', 1);
    const b = vol('h/b', 2);
    const c = vol('h/c', 3);
    const calls: string[] = [];
    const plan = await planWithMeasurement(
      input({ source: [a, b, c], dest: [a], sourceDiffs: [offer(b, a, 3 * MiB)] }),
      async (req) => {
        calls.push(`${req.to.path}<-${req.from?.path ?? ''}`);
        return req.estimate;
      },
      { maxRounds: 1 },
    );
    assert.deepEqual(calls, ['h/c<-h/b']);
    assert.deepEqual(edges(plan), ['h/b<-h/a', 'h/c<-h/b']);
    assert.equal(plan.transfers[0]?.size, 3 * MiB);
    assert.equal(plan.totalBytes, 3 * MiB + (plan.transfers[1]?.size ?? Number.NaN));
    assert.equal(plan.estimatedBytes, 0);
  });

  it('keeps the input options', async () => {
    const a = vol('h/a', 1);
    const t = vol('tmp/t', 2);
    const plan = await planWithMeasurement(
      input({ source: [a, t], options: { exclude: [/^tmp\//] } }),
      async (req) => req.estimate,
    );
    assert.deepEqual(edges(plan), ['h/a<-']);
  });

  it('plans with the smaller penalty for estimates it is going to measure', async () => {
    // Estimated 10 MiB (× 1.2 = 12) beats a known 15 MiB; with the final penalty (× 2 = 20) it would not.
    const p1 = vol('d/p1', 100);
    const p2 = vol('d/p2', 200);
    const w = vol('d/w', 300);
    const calls: string[] = [];
    const plan = await planWithMeasurement(
      input({
        source: [p1, p2, w],
        dest: [p1, p2],
        sourceDiffs: [offer(w, p2, 15 * MiB)],
        estimate: (_to, from) => (from === p1 ? 10 * MiB : GiB),
      }),
      async (req) => {
        calls.push(`${req.to.path}<-${req.from?.path ?? ''}`);
        return 10 * MiB;
      },
    );
    assert.deepEqual(calls, ['d/w<-d/p1']);
    assert.deepEqual(edges(plan), ['d/w<-d/p1']);
  });

  it('accepts a plan within the given tolerance, at its edge too', async () => {
    const { data, measure, calls } = twoParents();
    // Measured 100 MiB against 10 MiB estimated: within a tolerance of 10 (100 MiB).
    const plan = await planWithMeasurement(data, measure, { tolerance: 10 });
    assert.deepEqual(edges(plan), ['d/w<-d/p1']);
    assert.deepEqual(calls, ['d/w<-d/p1']);
    assert.equal(plan.rounds, 1);
    // 8 MiB estimated, 10 MiB measured: exactly 25 % off. p2 (8.25 MiB · 1.2) would now look cheaper.
    const p1 = vol('d/p1', 100);
    const p2 = vol('d/p2', 200);
    const w = vol('d/w', 300);
    const edge = await planWithMeasurement(
      input({
        source: [p1, p2, w],
        dest: [p1, p2],
        estimate: (_to, from) => (from === p1 ? 8 * MiB : from === p2 ? 8.25 * MiB : GiB),
      }),
      async (req) => (req.from === p1 ? 10 * MiB : 9 * MiB),
      { tolerance: 0.25 },
    );
    assert.deepEqual(edges(edge), ['d/w<-d/p1']);
    assert.equal(edge.transfers[0]?.size, 10 * MiB);
  });

  it('accepts a measured size of 0 and refuses a negative one', async () => {
    const { data } = twoParents();
    const plan = await planWithMeasurement(data, async () => 0);
    assert.equal(plan.totalBytes, 0);
    await assert.rejects(
      planWithMeasurement(data, async () => -1),
      UsageError,
    );
  });
});
