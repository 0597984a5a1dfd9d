import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  anyUnmet,
  evaluate,
  formatGoal,
  formatMet,
  formatValue,
  goalsFor,
  uploadRssGoal,
} from '../../../bench/goals.js';
import type { Run } from '../../../bench/harness.js';

const runs = (...seconds: number[]): Run[] => seconds.map((s) => ({ seconds: s }));

describe('bench goals (issue 12)', () => {
  it('attaches each goal to its scenario by group and name', () => {
    assert.deepEqual(goalsFor('sync', 'buttersink full sync of one snapshot (probe + transfer)'), [
      { kind: 'ratio', min: 0.97 },
    ]);
    assert.deepEqual(
      goalsFor('sync', 'buttersink incremental sync (s2 from s1, probe + transfer)'),
      [{ kind: 'ratio', min: 0.97 }],
    );
    assert.deepEqual(goalsFor('sync', 'full sync of a compress=zstd source'), [
      { kind: 'ratio', min: 1.4 },
    ]);
    assert.deepEqual(
      goalsFor('s3', 'S3 (moto) → btrfs, s1: buttersink vs aws s3 cp - → btrfs receive'),
      [{ kind: 'ratio', min: 1.0 }],
    );
    assert.deepEqual(
      goalsFor('ssh', 'btrfs → ssh://127.0.0.1 → btrfs (full s1) vs btrfs send | ssh'),
      [{ kind: 'ratio', min: 0.9 }],
    );
    assert.deepEqual(goalsFor('ssh', 'btrfs → ssh (OpenSSH transport, --ssh-program ssh)'), [
      { kind: 'ratio', min: 0.97 },
    ]);
    assert.deepEqual(goalsFor('rerun', 'rerun with nothing to transfer, 1,000 snapshots'), [
      { kind: 'wall', maxSeconds: 0.3 },
    ]);
    assert.deepEqual(goalsFor('probe', 'size probe as a command'), []);
    assert.deepEqual(goalsFor('pipe', 'btrfs send | uuid-rewrite | btrfs receive'), []);
  });

  it('holds an S3 upload to its speed and to the memory bound of its own --jobs and --part-size', () => {
    const goals = goalsFor('s3', 'btrfs → S3 (moto), s1', 'bs -q --part-size 8 --jobs 4 s3://b/');
    assert.deepEqual(goals, [
      { kind: 'ratio', min: 1.0 },
      { kind: 'rss', maxMiB: 140, why: '(jobs + 1) × part + 100 MiB, 4 jobs × 8 MiB' },
    ]);
    assert.equal(uploadRssGoal('bs s3://b/').maxMiB, 180, 'the CLI defaults: (4 + 1) × 16 + 100');
  });

  it('evaluates ratio, wall and RSS goals, with the boundary where the issue puts it', () => {
    const r = (ratio: number, project: Run[]) => ({ medianSpeedRatio: ratio, project });
    assert.equal(evaluate({ kind: 'ratio', min: 0.97 }, r(0.97, runs(1))).met, true);
    assert.equal(evaluate({ kind: 'ratio', min: 0.97 }, r(0.96, runs(1))).met, false);
    // < 0.3 s: the median of the runs, strictly below.
    const wall = { kind: 'wall', maxSeconds: 0.3 } as const;
    assert.deepEqual(evaluate(wall, r(1, runs(0.2, 0.5, 0.29))), {
      goal: wall,
      value: 0.29,
      met: true,
    });
    assert.equal(evaluate(wall, r(1, runs(0.3, 0.3, 0.1))).met, false);
    const rss = { kind: 'rss', maxMiB: 140, why: 'x' } as const;
    const withRss = (...kib: number[]) => kib.map((k) => ({ seconds: 1, maxRssKiB: k }));
    assert.deepEqual(evaluate(rss, r(1, withRss(100 * 1024, 140 * 1024))), {
      goal: rss,
      value: 140,
      met: true,
    });
    assert.equal(evaluate(rss, r(1, withRss(100 * 1024, 141 * 1024))).met, false);
    assert.deepEqual(evaluate(rss, r(1, runs(1))), { goal: rss, met: false });
  });

  it('formats goals, figures and verdicts', () => {
    assert.equal(formatGoal({ kind: 'ratio', min: 0.97 }), '≥ 0.97×');
    assert.equal(formatGoal({ kind: 'wall', maxSeconds: 0.3 }), '< 0.3 s wall');
    assert.equal(
      formatValue({ goal: { kind: 'ratio', min: 1 }, value: 0.8449, met: false }),
      '0.84×',
    );
    assert.equal(
      formatValue({ goal: { kind: 'wall', maxSeconds: 0.3 }, value: 0.634, met: false }),
      '0.63 s',
    );
    assert.equal(
      formatValue({ goal: { kind: 'rss', maxMiB: 1, why: '' }, met: false }),
      'not measured',
    );
    // A verdict read back from JSON: NaN became null.
    assert.equal(
      formatValue({
        goal: { kind: 'rss', maxMiB: 1, why: '' },
        value: null as unknown as number,
        met: false,
      }),
      'not measured',
    );
    const met = { goal: { kind: 'ratio', min: 1 } as const, value: 1.2, met: true };
    const unmet = { ...met, value: 0.5, met: false };
    assert.equal(formatMet([]), '—');
    assert.equal(formatMet([met]), 'met');
    assert.equal(formatMet([met, unmet]), '**not met**');
    assert.equal(anyUnmet([met]), false);
    assert.equal(anyUnmet([met, unmet]), true);
  });
});
