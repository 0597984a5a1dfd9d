import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { planChainRetention } from '../../../src/planner/retention-plan.js';
import type { ChainRetentionPlan } from '../../../src/planner/retention-plan.js';
import { applyKeepPolicy, parseKeepPolicy } from '../../../src/planner/retention.js';
import type { Diff, Volume } from '../../../src/planner/volume.js';

/** A bucket holding one linear chain: a full of day 0, then each day from the day before. */
function linearYear(start: string, days: number) {
  const t0 = Date.parse(`${start}T00:00:00Z`);
  const volumes: Volume[] = Array.from({ length: days }, (_, i) => {
    const day = new Date(t0 + i * 86_400_000).toISOString().slice(0, 10);
    return { uuid: `u-${day}`, path: `home/${day}` };
  });
  const diffs: Diff[] = volumes.map((v, i) => ({
    to: v.uuid,
    from: i === 0 ? null : (volumes[i - 1] as Volume).uuid,
    size: i === 0 ? 1000 : 10,
    estimated: false,
  }));
  return { volumes, diffs };
}

const uuidOf = (day: string) => `u-${day}`;

/**
 * Restore check independent of the planner: from what remains (kept diffs plus
 * the new fulls), the length of the shortest chain to each snapshot.
 */
function restorable(plan: ChainRetentionPlan<Diff>): Map<string, number> {
  const length = new Map<string, number>(plan.rebases.map((r) => [r.volume.uuid, 1]));
  for (const d of plan.keepDiffs) if (d.from === null) length.set(d.to, 1);
  for (let changed = true; changed;) {
    changed = false;
    for (const d of plan.keepDiffs) {
      const from = d.from === null ? undefined : length.get(d.from);
      if (from !== undefined && (length.get(d.to) ?? Infinity) > from + 1) {
        length.set(d.to, from + 1);
        changed = true;
      }
    }
  }
  return length;
}

function yearPlan(rebaseable: (v: Volume) => boolean, maxChain = 30) {
  const { volumes, diffs } = linearYear('2024-01-01', 366);
  const decision = applyKeepPolicy(
    volumes.map((v) => ({ id: v.uuid, path: v.path })),
    parseKeepPolicy('latest=7,daily=14,weekly=8,monthly=12'),
  );
  const keep = new Set(decision.kept.map((k) => k.item.id));
  const plan = planChainRetention({
    volumes,
    diffs,
    keep,
    rebaseable: new Set(volumes.filter(rebaseable).map((v) => v.uuid)),
    maxChain,
  });
  return { plan, keep, diffs };
}

describe('planChainRetention on a synthetic year in one chain', () => {
  it('source has every snapshot: chains bounded, every kept one restorable, exact counts', () => {
    const { plan, keep, diffs } = yearPlan(() => true);
    const lengths = restorable(plan);
    for (const u of keep) {
      assert.ok((lengths.get(u) ?? Infinity) <= 30, `${u} restorable within 30 diffs`);
      assert.equal(plan.chainLength.get(u), lengths.get(u));
    }
    // Feb 1 and Apr 1 … Dec 1 are 31+ diffs past the last base; Dec 31 is 31 past Dec 1.
    assert.deepEqual(
      plan.rebases.map((r) => [r.volume.path, r.reason]),
      ['02', '04', '05', '06', '07', '08', '09', '10', '11', '12']
        .map((m) => [`home/2024-${m}-01`, 'long'])
        .concat([['home/2024-12-31', 'long']]),
    );
    // Full of Jan 1, Feb 2…Mar 1 (for Mar 1), Nov 2…Nov 25 (Mondays), Dec 2…Dec 30.
    assert.equal(plan.keepDiffs.length, 1 + 29 + 24 + 29);
    assert.equal(plan.deleteDiffs.length, diffs.length - 83);
    assert.equal(plan.links.length, 28 + 21 + 13);
    assert.equal(plan.dropped.length + plan.links.length, 366 - keep.size);
    assert.deepEqual(plan.warnings, []);
    assert.deepEqual(plan.notes, []);
  });

  it('keeps only what a kept chain needs: no remaining diff is idle', () => {
    const { plan, keep } = yearPlan(() => true);
    const onChain = new Set<Diff>();
    const byTo = new Map(plan.keepDiffs.map((d) => [d.to, d]));
    for (const u of keep) {
      let at: string | null = u;
      while (at !== null && !plan.rebases.some((r) => r.volume.uuid === at)) {
        const d = byTo.get(at);
        if (!d) break;
        onChain.add(d);
        at = d.from;
      }
    }
    assert.equal(onChain.size, plan.keepDiffs.length);
    for (const d of plan.deleteDiffs) assert.ok(!plan.keepDiffs.includes(d));
  });

  it('source has only the last week: re-bases there, old chains stay with a note', () => {
    const { plan, keep } = yearPlan((v) => v.path >= 'home/2024-12-25');
    assert.deepEqual(
      plan.rebases.map((r) => r.volume.path),
      ['home/2024-12-25'],
    );
    const lengths = restorable(plan);
    for (const u of keep) assert.ok(lengths.has(u), `${u} restorable`);
    assert.equal(lengths.get(uuidOf('2024-12-31')), 7);
    // Only the Dec 24 → Dec 25 diff is idle now.
    assert.deepEqual(
      plan.deleteDiffs.map((d) => d.to),
      [uuidOf('2024-12-25')],
    );
    assert.ok(plan.notes.some((n) => n.startsWith('home/2024-02-01: its chain of 32 diffs')));
  });
});

describe('planChainRetention, small cases', () => {
  const vol = (x: string): Volume => ({ uuid: x, path: `s/${x}` });
  const diff = (to: string, from: string | null): Diff => ({ to, from, size: 1, estimated: false });
  const volumes = ['a', 'b', 'c'].map(vol);
  const chain = [diff('a', null), diff('b', 'a'), diff('c', 'b')];

  it('re-bases a chain whose full base is dropped, then trashes the base and its link', () => {
    const plan = planChainRetention({
      volumes,
      diffs: chain,
      keep: new Set(['b', 'c']),
      rebaseable: new Set(['b', 'c']),
      maxChain: 30,
    });
    assert.deepEqual(plan.rebases, [{ volume: vol('b'), reason: 'base', chainBefore: 2 }]);
    assert.deepEqual(plan.deleteDiffs, [diff('a', null), diff('b', 'a')]);
    assert.deepEqual(plan.keepDiffs, [diff('c', 'b')]);
    assert.deepEqual(plan.dropped, [vol('a')]);
  });

  it('without a snapshot to re-base at, deletes nothing a kept chain needs', () => {
    const plan = planChainRetention({
      volumes,
      diffs: chain,
      keep: new Set(['b', 'c']),
      rebaseable: new Set(),
      maxChain: 30,
    });
    assert.deepEqual(plan.rebases, []);
    assert.deepEqual(plan.deleteDiffs, []);
    assert.deepEqual(plan.links, [vol('a')]);
    assert.match(plan.notes[0] ?? '', /^s\/b: its full base is dropped/);
  });

  it('takes the shortest chain and trashes the longer alternative', () => {
    const plan = planChainRetention({
      volumes,
      diffs: [...chain, diff('c', null)],
      keep: new Set(['a', 'c']),
      rebaseable: new Set(),
      maxChain: 30,
    });
    assert.deepEqual(plan.keepDiffs, [diff('a', null), diff('c', null)]);
    assert.deepEqual(plan.deleteDiffs, [diff('b', 'a'), diff('c', 'b')]);
  });

  it('keeps every diff leading to a kept snapshot whose chain is broken, and warns', () => {
    const plan = planChainRetention({
      volumes,
      diffs: [diff('b', 'a'), diff('c', 'b')],
      keep: new Set(['c']),
      rebaseable: new Set(['c']),
      maxChain: 30,
    });
    assert.deepEqual(plan.deleteDiffs, []);
    assert.match(plan.warnings[0] ?? '', /^s\/c cannot be restored/);
  });
});

describe('planChainRetention: order, ties and edge cases', () => {
  const vol = (x: string, path = `s/${x}`): Volume => ({ uuid: x, path });
  const diff = (to: string, from: string | null): Diff => ({ to, from, size: 1, estimated: false });

  it('sorts diffs by key and snapshots by path, whatever the input order', () => {
    const plan = planChainRetention({
      volumes: ['y', 'c', 'x', 'a', 'd', 'b'].map((x) => vol(x)),
      diffs: [
        diff('d', 'c'),
        diff('y', null),
        diff('b', 'a'),
        diff('a', null),
        diff('x', null),
        diff('c', 'b'),
      ],
      keep: new Set(['c', 'd']),
      rebaseable: new Set(),
      maxChain: 30,
    });
    assert.deepEqual(plan.keepDiffs, [
      diff('a', null),
      diff('b', 'a'),
      diff('c', 'b'),
      diff('d', 'c'),
    ]);
    assert.deepEqual(plan.deleteDiffs, [diff('x', null), diff('y', null)]);
    assert.deepEqual(plan.links, [vol('a'), vol('b')]);
    assert.deepEqual(plan.dropped, [vol('x'), vol('y')]);
  });

  it('leaves a long chain with a note when only its base could be sent again', () => {
    const plan = planChainRetention({
      volumes: ['a', 'b', 'c', 'd'].map((x) => vol(x)),
      diffs: [diff('a', null), diff('b', 'a'), diff('c', 'b'), diff('d', 'c')],
      keep: new Set(['a', 'd']),
      rebaseable: new Set(['a']),
      maxChain: 2,
    });
    assert.deepEqual(plan.rebases, []);
    assert.equal(plan.notes.length, 1);
    assert.match(plan.notes[0] ?? '', /^s\/d: its chain of 4 diffs is longer than 2/);
  });

  it('fixes the shortest too-long chain first (greedy from the oldest), whatever the keep order', () => {
    // c0 (a full) … c6, one diff each; paths run the other way (c6 is s/a).
    const ids = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    const volumes = ids.map((x, i) => vol(x, `s/${'gfedcba'[i]}`));
    const plan = planChainRetention({
      volumes,
      diffs: ids.map((x, i) => diff(x, i === 0 ? null : (ids[i - 1] as string))),
      keep: new Set([...ids].reverse()),
      rebaseable: new Set(ids),
      maxChain: 3,
    });
    assert.deepEqual(
      plan.rebases.map((r) => [r.volume.uuid, r.reason, r.chainBefore]),
      [
        ['c3', 'long', 4],
        ['c6', 'long', 4],
      ],
    );
  });

  it('between equally long chains, fixes the one with the lower path first', () => {
    // z, then two branches: A1, A2 (paths s/y…) and B1, B2 (paths s/x…).
    const volumes = [
      vol('z'),
      vol('A1', 's/y1'),
      vol('A2', 's/y2'),
      vol('B1', 's/x1'),
      vol('B2', 's/x2'),
    ];
    const diffs = [
      diff('z', null),
      diff('A1', 'z'),
      diff('A2', 'A1'),
      diff('B1', 'z'),
      diff('B2', 'B1'),
    ];
    for (const keep of [
      ['A2', 'A1', 'B2', 'B1', 'z'],
      ['B2', 'B1', 'A2', 'A1', 'z'],
    ]) {
      const plan = planChainRetention({
        volumes,
        diffs,
        keep: new Set(keep),
        rebaseable: new Set(keep),
        maxChain: 2,
      });
      assert.deepEqual(
        plan.rebases.map((r) => [r.volume.uuid, r.reason, r.chainBefore]),
        [
          ['B2', 'long', 3],
          ['A2', 'long', 3],
        ],
        keep.join(','),
      );
    }
  });

  it('starts equally short chains from the new full with the lower UUID', () => {
    // u2 (path s/a) is re-based first, then u1; w can be restored from either.
    const volumes = [vol('z'), vol('u1', 's/b'), vol('u2', 's/a'), vol('w')];
    const plan = planChainRetention({
      volumes,
      diffs: [diff('z', null), diff('u1', 'z'), diff('u2', 'z'), diff('w', 'u1'), diff('w', 'u2')],
      keep: new Set(['u1', 'u2', 'w']),
      rebaseable: new Set(['u1', 'u2']),
      maxChain: 30,
    });
    assert.deepEqual(
      plan.rebases.map((r) => [r.volume.uuid, r.reason, r.chainBefore]),
      [
        ['u2', 'base', 2],
        ['u1', 'base', 2],
      ],
    );
    assert.deepEqual(plan.keepDiffs, [diff('w', 'u1')]);
    assert.deepEqual(plan.deleteDiffs, [
      diff('u1', 'z'),
      diff('u2', 'z'),
      diff('w', 'u2'),
      diff('z', null),
    ]);
  });

  it('for a broken chain keeps only the diffs leading to the kept snapshot', () => {
    const plan = planChainRetention({
      volumes: ['a', 'b', 'c', 'x'].map((x) => vol(x)),
      diffs: [diff('b', 'a'), diff('x', null), diff('c', 'b')],
      keep: new Set(['c']),
      rebaseable: new Set(),
      maxChain: 30,
    });
    assert.deepEqual(plan.keepDiffs, [diff('b', 'a'), diff('c', 'b')]);
    assert.deepEqual(plan.deleteDiffs, [diff('x', null)]);
  });

  it('lists broken chains by path', () => {
    const plan = planChainRetention({
      volumes: ['c', 'a', 'b'].map((x) => vol(x)),
      diffs: [diff('a', 'gone'), diff('b', 'gone'), diff('c', 'gone')],
      keep: new Set(['b', 'c', 'a']),
      rebaseable: new Set(),
      maxChain: 30,
    });
    assert.deepEqual(
      plan.warnings.map((w) => w.slice(0, 3)),
      ['s/a', 's/b', 's/c'],
    );
  });

  it('names a kept UUID the bucket lists no snapshot for by its UUID, and never warns about it', () => {
    const noted = planChainRetention({
      volumes: [vol('a')],
      diffs: [diff('a', null), diff('g', 'a')],
      keep: new Set(['g', 'ghost']),
      rebaseable: new Set(),
      maxChain: 30,
    });
    assert.equal(noted.notes.length, 1);
    assert.match(noted.notes[0] ?? '', /^g: its full base is dropped/);
    assert.deepEqual(noted.warnings, []);
    // A re-base needs a snapshot to name: none is planned for g.
    const rebased = planChainRetention({
      volumes: [vol('a')],
      diffs: [diff('a', null), diff('g', 'a')],
      keep: new Set(['g']),
      rebaseable: new Set(['g']),
      maxChain: 30,
    });
    assert.deepEqual(rebased.rebases, []);
  });
});
