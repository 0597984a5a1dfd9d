import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { formatBytes } from '../../../src/format.js';
import { formatPlan, planToJSON } from '../../../src/planner/plan.js';
import type { Plan, Transfer } from '../../../src/planner/plan.js';
import type { DiffOffer } from '../../../src/planner/plan-input.js';
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

describe('formatPlan / planToJSON on a hand-made plan', () => {
  const KiB = 1024;
  const a = vol('h/a', 1, { parentUuid: 'rw', totalSize: 5 * MiB, exclusiveSize: 2 * MiB });
  const b = vol('h/b', 2);
  const c = vol('h/c');
  const transfer = (
    to: typeof a,
    from: typeof a | null,
    size: number,
    height: number,
  ): Transfer => ({
    to,
    from,
    size,
    estimated: height === 2,
    store: 'source',
    height,
    key: `${to.uuid}_${from?.uuid ?? 'None'}`,
  });
  const diff = (to: string, from: string | null, size: number): DiffOffer => ({
    to,
    from,
    size,
    estimated: false,
    store: 'dest',
    atDest: true,
  });
  const transfers = [
    transfer(a, null, KiB, 1),
    transfer(b, a, 2 * KiB, 2),
    transfer(c, b, 3 * KiB, 3),
  ];
  const plan: Plan = {
    transfers,
    keep: [vol('h/k1'), vol('h/k2', 7)],
    deletes: { volumes: [vol('h/old')], diffs: [diff('x', null, KiB), diff('y', 'x', 2 * KiB)] },
    missing: [vol('h/m')],
    totalBytes: 6 * KiB,
    estimatedBytes: 2 * KiB,
    cost: 0,
    destStoresDiffs: true,
    warnings: [
      {
        code: 'UNREACHABLE',
        message: 'no available diff can create h/m',
        details: { uuid: 'u:h/m' },
      },
    ],
  };

  it('prints fulls, incrementals, chain heights, keeps, deletes and missing snapshots', () => {
    assert.deepEqual(formatPlan(plan).split('\n'), [
      'Optimal synchronization: 3 transfers (1 full, 2 incremental), 6.0 KiB (estimated)',
      '  h/a (full, 1.0 KiB)',
      '  h/b from h/a (2.0 KiB, estimated, 1 ancestor)',
      '  h/c from h/b (3.0 KiB, 2 ancestors)',
      'Keep 2 snapshots already at the destination',
      'Delete h/old',
      'Delete diff x_None (1.0 KiB)',
      'Delete diff y_x (2.0 KiB)',
      'Missing h/m: no available diff creates it',
    ]);
  });

  it('says one transfer, nothing estimated, and no chain heights for a subvolume destination', () => {
    const one: Plan = {
      ...plan,
      transfers: [{ ...transfer(c, b, 3 * KiB, 3) }],
      keep: [],
      deletes: { volumes: [], diffs: [] },
      missing: [],
      totalBytes: 3 * KiB,
      estimatedBytes: 0,
      destStoresDiffs: false,
    };
    assert.equal(
      formatPlan(one),
      'Optimal synchronization: 1 transfer (0 full, 1 incremental), 3.0 KiB\n  h/c from h/b (3.0 KiB)',
    );
  });

  it('copies exactly the known fields to JSON', () => {
    const json = planToJSON(plan);
    assert.deepEqual(json.transfers[0], {
      to: {
        uuid: a.uuid,
        path: 'h/a',
        gen: 1,
        parentUuid: 'rw',
        totalSize: 5 * MiB,
        exclusiveSize: 2 * MiB,
      },
      from: null,
      size: KiB,
      estimated: false,
      store: 'source',
      height: 1,
    });
    assert.deepEqual(json.transfers[2]?.to, { uuid: c.uuid, path: 'h/c' });
    assert.deepEqual(json.keep, [
      { uuid: 'u:h/k1', path: 'h/k1' },
      { uuid: 'u:h/k2', path: 'h/k2', gen: 7 },
    ]);
    assert.deepEqual(json.deletes, {
      volumes: [{ uuid: 'u:h/old', path: 'h/old' }],
      diffs: [
        { to: 'x', from: null, size: KiB },
        { to: 'y', from: 'x', size: 2 * KiB },
      ],
    });
    assert.deepEqual(json.missing, [{ uuid: 'u:h/m', path: 'h/m' }]);
    assert.deepEqual(json.warnings, plan.warnings);
    assert.notEqual(json.warnings[0], plan.warnings[0]);
    assert.equal(json.rounds, 0);
    assert.equal(planToJSON({ ...plan, rounds: 3 }).rounds, 3);
  });
});
