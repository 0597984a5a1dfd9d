import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Verdict } from '../../../bench/goals.js';
import type { ScenarioProfile } from '../../../bench/profile.js';
import { renderResults, writeResults } from '../../../bench/results.js';
import type { Section } from '../../../bench/results.js';

const ROW =
  '| buttersink full sync | 5 | 3.58 s | 2.08 s | **0.60×** | 1.77 + 2.87 s | 0.11 + 2.33 s | 117 MiB | 3 MiB |';
const latest = { started: '2026-11-30 07:00 UTC', machine: 'test machine' };

/** A section as bench/results.json held it before goals and profiles. */
const oldSection: Section = {
  group: 'sync',
  run: '2026-11-30 02:39 UTC',
  machine: 'old machine',
  pairs: 5,
  rows: [ROW],
  extra: [],
  notes: [],
};
const unmet: Verdict = { goal: { kind: 'ratio', min: 0.97 }, value: 0.6, met: false };
const met: Verdict = { goal: { kind: 'ratio', min: 1 }, value: 1.1, met: true };

const profile: ScenarioProfile = {
  scenario: 'buttersink full sync',
  verdicts: [unmet],
  bytes: 2 ** 30,
  runs: [
    {
      label: 'buttersink',
      seconds: 3.5,
      processes: [
        { path: 'bash › node', count: 1, userSeconds: 1.5, sysSeconds: 0.5, elapsedSeconds: 3.4 },
        {
          path: 'bash › node › btrfs',
          count: 2,
          userSeconds: 0.2,
          sysSeconds: 2.4,
          elapsedSeconds: 3,
        },
        {
          path: 'bash › node › cat',
          count: 3,
          userSeconds: 0,
          sysSeconds: 0.001,
          elapsedSeconds: 0,
        },
      ],
    },
    {
      label: 'baseline',
      what: 'the plain design',
      seconds: 2,
      processes: [
        { path: 'bash › btrfs', count: 2, userSeconds: 0.1, sysSeconds: 2.3, elapsedSeconds: 2 },
      ],
    },
    { label: 'CLI start-up + plain', what: 'a floor', seconds: 2.5, processes: [] },
    { label: 'Node pass-through', what: 'a floor', seconds: 2.5, processes: [], exitCode: 1 },
  ],
  node: [
    {
      process: 'bash › node (pid 42)',
      summary: {
        totalMs: 3400,
        samples: 3400,
        idlePct: 20,
        modules: [
          { module: 'buttersink', selfMs: 900, pct: 26.5 },
          { module: 'commander', selfMs: 20, pct: 0.6 },
          { module: 'highland', selfMs: 10, pct: 0.3 },
        ],
        top: [
          {
            fn: 'parse dist/btrfs/send-stream.js:42',
            module: 'buttersink',
            selfMs: 900,
            pct: 26.5,
          },
        ],
      },
    },
  ],
  notes: ['No SDK upload floor: because.'],
};

describe('bench RESULTS.md rendering', () => {
  it('renders a section stored before goals existed as before: no goal columns, no profile', () => {
    const md = renderResults([oldSection], [], latest);
    assert.ok(md.includes(`\n${ROW}\n`), 'the stored row unchanged');
    assert.ok(!md.includes('goal (issue 12)'));
    assert.ok(!md.includes('## Goals (issue 12)'));
    assert.match(md, /## Profiles \(goals not met\)\n[^]*None stored/);
  });

  it('adds goal and verdict columns, and a goal summary, for sections with goals', () => {
    const s: Section = {
      ...oldSection,
      rows: [ROW, ROW.replace('full', 'other')],
      goals: [{ row: 0, scenario: 'buttersink full sync', verdicts: [unmet, met] }],
      profiles: [],
    };
    const md = renderResults([s], ['sync'], latest);
    assert.ok(md.includes(`${ROW} ≥ 0.97×: 0.60×; ≥ 1×: 1.10× | **not met** |`));
    assert.ok(md.includes(`${ROW.replace('full', 'other')} — | — |`));
    assert.match(md, /\| peak RSS baseline \| goal \(issue 12\) \| met\? \|\n\|(---\|){11}\n/);
    assert.ok(
      md.includes(
        '| buttersink full sync | ≥ 0.97× | 0.60× | **not met** | 2026-11-30 02:39 UTC |',
      ),
    );
    assert.ok(md.includes('| buttersink full sync | ≥ 1× | 1.10× | met | 2026-11-30 02:39 UTC |'));
    assert.ok(
      md.includes(
        '- Not profiled: buttersink full sync (run 2026-11-30 02:39 UTC; profiling was off).',
      ),
    );
  });

  it('renders a profile: runs with floors, CPU by program against the baseline, processes, Node', () => {
    const s: Section = {
      ...oldSection,
      goals: [{ row: 0, scenario: 'buttersink full sync', verdicts: [unmet] }],
      profiles: [profile],
    };
    const md = renderResults([s], ['sync'], latest);
    const part = md.slice(md.indexOf('## Profiles (goals not met)'));
    assert.ok(part.includes('### buttersink full sync'));
    assert.ok(part.includes('Goals: ≥ 0.97×: measured 0.60×, not met.'));
    // The failed floor (exit 1) is no floor.
    assert.ok(
      part.includes(
        "In these runs buttersink took 3.50 s against the baseline's 2.00 s (+1.50 s wall) and +2.20 s CPU (by program: node +2.00 s, btrfs +0.20 s). Design floors: CLI start-up + plain 2.50 s (0.80×).\n",
      ),
    );
    // 4.6 s CPU for 1 GiB; ratio 2 / 3.5.
    assert.ok(
      part.includes(
        '| buttersink | 3.50 s | 1.70 + 2.90 s | 1.50 + 0.50 s | 4.60 s (Node 2.00 s) | 0.57× |',
      ),
    );
    assert.ok(
      part.includes(
        '| baseline (the plain design) | 2.00 s | 0.10 + 2.30 s | 0.00 + 0.00 s | 2.40 s (Node 0.00 s) | 1.00× |',
      ),
    );
    assert.ok(part.includes('| Node pass-through (a floor) (exit 1) | 2.50 s |'));
    assert.ok(part.includes('| btrfs | 0.20 + 2.40 s | 0.10 + 2.30 s | +0.20 s |'));
    assert.ok(part.includes('| node | 1.50 + 0.50 s | 0.00 + 0.00 s | +2.00 s |'));
    assert.ok(part.includes('| **all** | 1.70 + 2.90 s | 0.10 + 2.30 s | **2.20 s** |'));
    assert.ok(part.includes('| buttersink | bash › node › btrfs × 2 | 0.20 s | 2.40 s | 3.00 s |'));
    assert.ok(part.includes('| buttersink | 3 more processes under 0.01 s CPU each | | | |'));
    assert.ok(
      part.includes(
        'CPU profile of `bash › node (pid 42)`: 3400 ms profiled, 3400 samples, main thread idle 20.0 %.',
      ),
    );
    assert.ok(
      part.includes('| `parse dist/btrfs/send-stream.js:42` | buttersink | 900 ms | 26.5 % |'),
    );
    assert.ok(part.includes('| buttersink | 900 ms | 26.5 % |'));
    assert.ok(part.includes('| 2 more modules under 1 % each | 30 ms | 0.9 % |'));
    assert.ok(part.includes('- No SDK upload floor: because.'));
    assert.ok(!part.includes('Not profiled'));
  });

  it('merges a run into an older results.json: old sections kept as they were, new ones with goals', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bs-bench-results-'));
    try {
      const pipe = { ...oldSection, group: 'pipe' };
      await writeFile(join(dir, 'results.json'), JSON.stringify([oldSection, pipe]));
      const fresh: Section = {
        ...oldSection,
        run: latest.started,
        goals: [{ row: 0, scenario: 'buttersink full sync', verdicts: [unmet] }],
        profiles: [profile],
      };
      const md = await writeResults(dir, [fresh], latest);
      const stored = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Section[];
      assert.deepEqual(stored, [pipe, fresh]);
      assert.equal(await readFile(join(dir, 'RESULTS.md'), 'utf8'), md);
      assert.equal(md, renderResults(stored, ['sync'], latest));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
