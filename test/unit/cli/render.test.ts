/** The progress display's text: bytes stored where known, ≈ before estimates, an overall line. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressText } from '../../../src/cli/render.js';
import type { ProgressState } from '../../../src/cli/render.js';

const MiB = 1024 ** 2;

function state(over: Partial<ProgressState> = {}): ProgressState {
  return {
    label: 'home/s2',
    index: 1,
    count: 3,
    progress: {
      bytes: 20 * MiB,
      total: 40 * MiB,
      rate: 10 * MiB,
      elapsedMs: 2000,
      etaMs: 2000,
      done: false,
    },
    estimated: true,
    doneBytes: 30 * MiB,
    totalBytes: 100 * MiB,
    totalEstimated: true,
    ...over,
  };
}

describe('progressText', () => {
  it('shows the transfer and, for several, an overall line: n of m snapshots, bytes of the total', () => {
    assert.equal(
      progressText(state()),
      '  home/s2 (2 of 3): 20.0 MiB of ≈40.0 MiB at 10.0 MiB/s, 2 s left\n' +
        '  overall: 1 of 3 snapshots done, 50.0 MiB of ≈100.0 MiB',
    );
  });

  it('counts bytes stored when the destination tells, and says how much was sent', () => {
    const text = progressText(state({ stored: 8 * MiB }));
    assert.match(
      text,
      /^ {2}home\/s2 \(2 of 3\): 8\.0 MiB stored \(20\.0 MiB sent\) of ≈40\.0 MiB/,
    );
    assert.match(text, /overall: 1 of 3 snapshots done, 38\.0 MiB of/);
  });

  it('has no ≈ for measured sizes, and no overall line for a single transfer', () => {
    const text = progressText(
      state({ count: 1, index: 0, estimated: false, totalEstimated: false }),
    );
    assert.equal(text, '  home/s2: 20.0 MiB of 40.0 MiB at 10.0 MiB/s, 2 s left');
  });
});
