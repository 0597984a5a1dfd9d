/** The --json events built from plain data, each checked against the schema in the repository. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  errorEvent,
  jsonLine,
  listingEvent,
  partialActions,
  planEvent,
  summaryEvent,
  transferEvent,
} from '../../../src/cli/json-events.js';
import { LocationError } from '../../../src/errors.js';
import { planSync } from '../../../src/planner/plan-sync.js';
import { assertEvent, assertJsonLines } from '../../fixtures/json-schema.js';
import { input, offer, vol } from '../planner/helpers.js';

const U = (n: number) => `${String(n).repeat(8)}-1111-4111-8111-111111111111`;
const a = vol('s1', 1, { uuid: U(1), totalSize: 4096, exclusiveSize: 512 });
const b = vol('s2', 2, { uuid: U(2) });
const all = () => true;

describe('json events', () => {
  it('a btrfs listing: snapshots sorted by path, unknown sizes null, partials with their action', () => {
    const e = listingEvent('/mnt/b/', { kind: 'btrfs', volumes: [b, a] }, all, [
      { where: '/mnt/b/s3.part', action: 'keep' },
    ]);
    assertEvent(e);
    assert.deepEqual(
      e.snapshots.map((s) => [s.path, s.totalSize]),
      [
        ['s1', 4096],
        ['s2', null],
      ],
    );
    assert.deepEqual(e.diffs, []);
  });

  it('an S3 listing names each diff with its paths; a parent not listed has fromPath null', () => {
    const view = {
      kind: 's3' as const,
      volumes: [a, b],
      diffs: [offer(b, a, 10, { store: 'dest' }), offer(a, null, 99, { store: 'dest' })],
    };
    const e = listingEvent('s3://bkt/p/', view, (p) => p === 's2', []);
    assertEvent(e);
    assert.deepEqual(e.diffs, [{ to: U(2), path: 's2', from: U(1), fromPath: 's1', size: 10 }]);
    assert.deepEqual(partialActions([{ where: 'x' }], { delete: true, dryRun: true }), [
      { where: 'x', action: 'would-delete' },
    ]);
  });

  it('a sync: plan, transfer and summary lines, each one JSON object valid against the schema', () => {
    const plan = planSync(
      input({ source: [a, b], dest: [], sourceDiffs: [offer(b, a, 5)], options: {} }),
    );
    const where = { source: '/a/', destination: '/b/', dryRun: false };
    const done = plan.transfers.map((t) => ({ transfer: t, bytes: 7, seconds: 0.12345 }));
    const report = { plan, transferred: done, deleted: [] };
    const text =
      jsonLine(planEvent(plan, where)) +
      done.map((d, i) => jsonLine(transferEvent(d, i, done.length, 'sent'))).join('') +
      jsonLine(summaryEvent(report, { dryRun: false, seconds: 1.5, deletedDiffs: 0 }));
    const events = assertJsonLines(text);
    assert.deepEqual(
      events.map((e) => e.event),
      ['plan', 'transfer', 'transfer', 'summary'],
    );
    const second = events[2] as ReturnType<typeof transferEvent>;
    assert.deepEqual(
      [second.index, second.kind, second.from?.path, second.seconds],
      [2, 'incremental', 's1', 0.123],
    );
    assert.equal(
      summaryEvent(
        { plan, transferred: [], deleted: [] },
        { dryRun: false, seconds: 0, deletedDiffs: 1 },
      ).result,
      'done',
      'moving a diff to trash/ is doing something',
    );
  });

  it('an error event carries the one-line message, the hint and the exit status', () => {
    const e = errorEvent(new LocationError('NO_SUCH_DIRECTORY', '/x: no such directory'), 2, '/x');
    assertEvent(e);
    assert.equal(e.message, '/x: no such directory');
    assert.match(e.hint ?? '', /trailing '\/'/);
  });

  it('the schema refuses what it does not describe', () => {
    assert.throws(() => assertEvent({ event: 'summary', result: 'done' }));
    assert.throws(() => assertEvent({ event: 'delete', path: 'x', uuid: U(1), extra: 1 }));
    assert.throws(() => assertJsonLines('Optimal synchronization: nothing to transfer\n'));
  });
});
