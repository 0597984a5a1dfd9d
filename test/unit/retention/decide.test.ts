import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { parseButtersinkArgs } from '../../../src/cli/config.js';
import { decideRetention, notWorthSending, protectedUuids } from '../../../src/retention/decide.js';
import type { StoreView } from '../../../src/planner/plan-input.js';
import { parseKeepPolicy } from '../../../src/planner/retention.js';
import type { Volume } from '../../../src/planner/volume.js';

const days = (from: number, to: number): Volume[] =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const d = String(from + i).padStart(2, '0');
    return { uuid: `u${d}`, path: `home/2024-01-${d}`, gen: from + i };
  });
const view = (volumes: Volume[]): StoreView => ({ kind: 'btrfs', volumes });

describe('--keep and --max-chain flags', () => {
  it('parse into a policy, with max chain 30 by default', () => {
    const r = parseButtersinkArgs(['--keep', 'latest=3,daily=5', '/a/', '/b/'], '1');
    assert.ok(r.ok);
    assert.deepEqual(r.config.flags.keep, { latest: 3, daily: 5 });
    assert.equal(r.config.flags.maxChain, 30);
    const none = parseButtersinkArgs(['/a/', '/b/'], '1');
    assert.ok(none.ok && none.config.flags.keep === undefined);
  });

  it('refuse a bad spec with one line and exit code 2', () => {
    const r = parseButtersinkArgs(['--keep', 'daily=x', '/a/', '/b/'], '1');
    assert.ok(!r.ok);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /--keep.*cannot read 'daily=x'/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(!parseButtersinkArgs(['--max-chain', '0', '/a/', '/b/'], '1').ok);
  });
});

describe('the safety rule of retention', () => {
  it('protects the newest transferred snapshot and the newest one the source still holds', () => {
    const dest = view(days(1, 20));
    const source = view(days(3, 12));
    const sent = [days(7, 7)[0]!, days(5, 5)[0]!];
    assert.deepEqual([...protectedUuids(source, dest, sent)].sort(), ['u07', 'u12']);
    const other = { uuid: 'r1', path: 'root/2024-01-01' };
    const both = protectedUuids(view([...days(1, 3), other]), view([...days(1, 5), other]), []);
    assert.deepEqual([...both].sort(), ['r1', 'u03']);
  });

  it('keeps them even when the policy drops them; deletes exactly the rest', () => {
    const dest = view(days(1, 20));
    const plan = decideRetention(view(days(1, 12)), dest, 'btrfs', [], {
      policy: parseKeepPolicy('latest=3'),
      maxChain: 30,
      exclude: [/-0[12]$/],
    });
    assert.deepEqual(
      plan.decision.kept.map((k) => [k.item.path, k.reasons.join('+')]),
      [
        ['home/2024-01-12', 'protected'],
        ['home/2024-01-18', 'latest'],
        ['home/2024-01-19', 'latest'],
        ['home/2024-01-20', 'latest'],
      ],
    );
    assert.deepEqual(
      plan.excluded.map((v) => v.path),
      ['home/2024-01-01', 'home/2024-01-02'],
    );
    assert.equal(plan.decision.dropped.length, 20 - 4 - 2);
    assert.equal(plan.chains, undefined);
  });
});

describe('notWorthSending', () => {
  const settings = { policy: parseKeepPolicy('latest=2'), maxChain: 30 };

  it('leaves out what the policy would drop on arrival, never the newest', () => {
    const skip = notWorthSending(view(days(1, 25)), view([]), settings);
    assert.deepEqual(
      skip.map((v) => v.uuid),
      days(1, 23).map((v) => v.uuid),
    );
  });

  it('leaves out nothing already at the destination, nor what --exclude matches', () => {
    const skip = notWorthSending(view(days(1, 25)), view(days(1, 10)), {
      ...settings,
      exclude: [/-1[12]$/],
    });
    assert.deepEqual(
      skip.map((v) => v.uuid),
      days(13, 23).map((v) => v.uuid),
    );
  });
});
