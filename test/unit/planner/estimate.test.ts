import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  DEFAULT_FULL_SIZE,
  LONE_FAMILY,
  MIN_CHANGE_RATE,
  MIN_DIFF_SIZE,
  estimateDiffSize,
  estimateFullSize,
  familyStats,
} from '../../../src/planner/estimate.js';
import { vol } from './helpers.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('estimate: quotas off', () => {
  const vols = [0, 1, 2, 3, 4, 5].map((i) => vol(`d/s${i}`, 1000 + 100 * i));
  const stats = familyStats(vols);

  it('derives the typical generation gap and a default full size', () => {
    assert.equal(stats.quotas, false);
    assert.equal(stats.typicalGap, 100);
    assert.equal(stats.fullGuess, DEFAULT_FULL_SIZE);
    assert.equal(estimateFullSize(vols[0]!, stats), DEFAULT_FULL_SIZE);
    assert.equal(estimateDiffSize(vols[0]!, null, stats), DEFAULT_FULL_SIZE);
  });

  it('grows with generation distance, is symmetric and stays below the full', () => {
    const d1 = estimateDiffSize(vols[1]!, vols[0]!, stats);
    const d2 = estimateDiffSize(vols[2]!, vols[0]!, stats);
    const d5 = estimateDiffSize(vols[5]!, vols[0]!, stats);
    assert.ok(d1 < d2 && d2 < d5 && d5 < DEFAULT_FULL_SIZE);
    assert.equal(estimateDiffSize(vols[0]!, vols[1]!, stats), d1);
    assert.ok(Math.abs(d1 / DEFAULT_FULL_SIZE - 0.05) < 0.001);
  });

  it('uses a known total for the full and never goes below the minimum', () => {
    const small = vol('x/a', 1, { totalSize: 100 });
    assert.equal(estimateFullSize(small), MIN_DIFF_SIZE);
    const big = vol('x/b', 1, { totalSize: 5 * GiB });
    assert.equal(estimateFullSize(big), 5 * GiB);
    assert.equal(estimateDiffSize(vol('x/c', 2), vol('x/c0', 2)), MIN_DIFF_SIZE);
  });

  it('assumes a larger distance when a generation is unknown', () => {
    const d1 = estimateDiffSize(vols[1]!, vols[0]!, stats);
    const unknown = estimateDiffSize(vol('d/u'), vols[0]!, stats);
    assert.ok(unknown > d1);
  });
});

describe('estimate: quotas on', () => {
  const vols = [0, 1, 2, 3].map((i) =>
    vol(`q/s${i}`, 1000 + 100 * i, { totalSize: GiB + i * 10 * MiB, exclusiveSize: 100 * MiB }),
  );
  const stats = familyStats(vols);

  it('computes a change rate from exclusives and size spread', () => {
    assert.equal(stats.quotas, true);
    assert.ok(stats.changeRate > MIN_CHANGE_RATE);
    assert.equal(stats.fullGuess, GiB + 15 * MiB);
  });

  it('counts growth, decay with distance, and the exclusive floor', () => {
    const d1 = estimateDiffSize(vols[1]!, vols[0]!, stats);
    const d3 = estimateDiffSize(vols[3]!, vols[0]!, stats);
    assert.ok(d1 >= 100 * MiB);
    assert.ok(d3 >= d1);
    const far = { ...vols[3]!, exclusiveSize: 0 };
    const near = { ...vols[1]!, exclusiveSize: 0 };
    assert.ok(estimateDiffSize(far, vols[0]!, stats) > estimateDiffSize(near, vols[0]!, stats));
    assert.ok(d3 < estimateFullSize(vols[3]!, stats));
  });
});

describe('familyStats: what it trusts', () => {
  const both = (path: string, gen: number | undefined, total: number) =>
    vol(path, gen, { totalSize: total, exclusiveSize: MiB });

  it('gives the lone-family defaults for no volumes', () => {
    assert.deepEqual(familyStats([]), {
      quotas: false,
      changeRate: MIN_CHANGE_RATE,
      typicalGap: 1,
      fullGuess: DEFAULT_FULL_SIZE,
    });
    assert.equal(LONE_FAMILY.quotas, false);
  });

  it('counts quotas on only when every member has both sizes', () => {
    assert.equal(familyStats([both('q/a', 1, GiB), both('q/b', 2, GiB)]).quotas, true);
    assert.equal(
      familyStats([both('q/a', 1, GiB), vol('q/b', 2, { totalSize: GiB })]).quotas,
      false,
    );
    assert.equal(
      familyStats([both('q/a', 1, GiB), vol('q/b', 2, { exclusiveSize: MiB })]).quotas,
      false,
    );
  });

  it('takes the median positive step between known generations, in any order', () => {
    // Sorted: 100, 101, 301, 302, 602: steps 1, 200, 1, 300; the upper median is 200.
    const gens = [302, 100, 602, 101, 301];
    assert.equal(familyStats(gens.map((g, i) => vol(`d/s${i}`, g))).typicalGap, 200);
    // Equal generations are no step.
    const same = [100, 100, 100, 200];
    assert.equal(familyStats(same.map((g, i) => vol(`d/s${i}`, g))).typicalGap, 100);
    assert.equal(familyStats([vol('d/one', 5)]).typicalGap, 1);
    assert.equal(familyStats([vol('d/x'), vol('d/y')]).typicalGap, 1);
  });

  it('derives the change rate from the size spread over the known generation span', () => {
    // Spread 200 MiB of 3300 MiB (exclusives only 3 MiB), 3 members, span 100 generations.
    const stats = familyStats([
      both('q/c', undefined, 1100 * MiB),
      both('q/a', 100, 1000 * MiB),
      both('q/b', 200, 1200 * MiB),
    ]);
    assert.equal(stats.quotas, true);
    assert.equal(stats.changeRate, (-Math.log(1 - 200 / 3300) * 2) / 100 / 10);
    // Two members with known generations are enough.
    const two = familyStats([both('q/a', 100, 1000 * MiB), both('q/b', 200, 1200 * MiB)]);
    assert.equal(two.changeRate, (-Math.log(1 - 200 / 2200) * 1) / 100 / 10);
  });

  it('keeps the lowest change rate when nothing changed or quotas are off', () => {
    const still = familyStats([
      vol('q/a', 100, { totalSize: GiB, exclusiveSize: 0 }),
      vol('q/b', 200, { totalSize: GiB, exclusiveSize: 0 }),
    ]);
    assert.equal(still.quotas, true);
    assert.equal(still.changeRate, MIN_CHANGE_RATE);
    const off = familyStats([
      both('q/a', 100, 1000 * MiB),
      vol('q/b', 200, { totalSize: 1200 * MiB }),
    ]);
    assert.equal(off.quotas, false);
    assert.equal(off.changeRate, MIN_CHANGE_RATE);
  });
});

describe('estimateDiffSize: which formula', () => {
  const quotaStats = { quotas: true, changeRate: 0.001, typicalGap: 10, fullGuess: 100 * MiB };

  it('uses the neighbour fraction without family quotas, even when both totals are known', () => {
    const to = vol('x/b', 2, { totalSize: GiB, exclusiveSize: 0 });
    const from = vol('x/a', 1, { totalSize: GiB, exclusiveSize: 0 });
    // 5 % of the full for one typical gap.
    assert.equal(estimateDiffSize(to, from), 53687091);
  });

  it('uses the neighbour fraction when either total is unknown', () => {
    // 10 typical gaps: 1 − 0.95^10 of the full (the family's guess, or the known total).
    const frac = 1 - 0.95 ** 10;
    const noTo = estimateDiffSize(
      vol('q/b', 200),
      vol('q/a', 100, { totalSize: 90 * MiB }),
      quotaStats,
    );
    assert.equal(noTo, Math.round(100 * MiB * frac));
    const noFrom = estimateDiffSize(
      vol('q/b', 200, { totalSize: 100 * MiB }),
      vol('q/a', 100),
      quotaStats,
    );
    assert.equal(noFrom, Math.round(100 * MiB * frac));
  });

  it('with quotas: growth plus decay over the generation distance', () => {
    const to = vol('q/b', 200, { totalSize: 100 * MiB, exclusiveSize: 0 });
    const from = vol('q/a', 100, { totalSize: 90 * MiB });
    const size = estimateDiffSize(to, from, quotaStats);
    assert.equal(size, Math.round(10 * MiB + 100 * MiB * (1 - Math.exp(-0.001 * 100))));
    assert.ok(Math.abs(size / MiB - 19.516) < 0.001);
    // An unknown generation counts as 4 typical gaps (40 generations).
    const unknown = estimateDiffSize(
      to,
      vol('q/a', undefined, { totalSize: 90 * MiB }),
      quotaStats,
    );
    assert.equal(unknown, Math.round(10 * MiB + 100 * MiB * (1 - Math.exp(-0.001 * 40))));
  });

  it('counts an unknown parent generation as 4 typical gaps', () => {
    const stats = familyStats([vol('d/a', 100), vol('d/b', 200)]);
    const size = estimateDiffSize(vol('d/b', 200), vol('d/a'), stats);
    assert.equal(size, Math.round(DEFAULT_FULL_SIZE * (1 - 0.95 ** 4)));
  });
});
