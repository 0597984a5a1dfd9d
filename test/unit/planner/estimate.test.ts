import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  DEFAULT_FULL_SIZE,
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
