import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  DEFAULT_COST_MODEL,
  chargedSize,
  costContext,
  edgeCost,
} from '../../../src/planner/cost-model.js';

const base = { size: 1600, estimated: false, atDest: false, parentHeight: 0, parentChainBytes: 0 };

describe('cost model', () => {
  it('charges transfer plus storage for a new diff', () => {
    assert.equal(edgeCost(base, costContext({})), 1600 + 100);
  });

  it('charges nothing for a held diff, storage when deleting', () => {
    assert.equal(edgeCost({ ...base, atDest: true }, costContext({})), 0);
    assert.equal(edgeCost({ ...base, atDest: true }, costContext({ deleting: true })), 100);
  });

  it('adds a corruption risk doubling with chain height for diff stores', () => {
    const ctx = costContext({ destStoresDiffs: true });
    const at = (h: number) =>
      edgeCost({ ...base, parentHeight: h - 1, parentChainBytes: 0 }, ctx) - 1700;
    assert.equal(at(8), 1600);
    assert.equal(at(9), 3200);
    assert.equal(at(1), 1600 / 128);
    const withChain = edgeCost({ ...base, parentHeight: 7, parentChainBytes: 400 }, ctx);
    assert.equal(withChain, 1700 + 2000);
  });

  it('penalises estimates, more when they will not be measured', () => {
    assert.equal(chargedSize(100, true, costContext({ willMeasure: true })), 120);
    assert.equal(chargedSize(100, true, costContext({})), 200);
    assert.equal(chargedSize(100, false, costContext({})), 100);
  });

  it('takes overrides of its constants', () => {
    const ctx = costContext({ model: { storageDivisor: 4 } });
    assert.equal(edgeCost(base, ctx), 2000);
    assert.equal(DEFAULT_COST_MODEL.storageDivisor, 16);
    assert.throws(() => {
      (DEFAULT_COST_MODEL as { storageDivisor: number }).storageDivisor = 1;
    });
  });
});
