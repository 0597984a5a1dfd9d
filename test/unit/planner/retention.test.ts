import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { UsageError } from '../../../src/errors.js';
import {
  applyKeepPolicy,
  formatKeepPolicy,
  nameDate,
  parseKeepPolicy,
  seriesOf,
} from '../../../src/planner/retention.js';

/** `home/2024-01-01` … one a day for `days` days from `start` (UTC). */
function dailySnapshots(start: string, days: number, dir = 'home') {
  const t0 = Date.parse(`${start}T00:00:00Z`);
  return Array.from({ length: days }, (_, i) => {
    const day = new Date(t0 + i * 86_400_000).toISOString().slice(0, 10);
    return { id: `${dir}-${day}`, path: `${dir}/${day}` };
  });
}

const keptPaths = (d: { kept: readonly { item: { path: string } }[] }) =>
  d.kept.map((k) => k.item.path);

describe('parseKeepPolicy', () => {
  it('reads every rule, * as unlimited', () => {
    assert.deepEqual(parseKeepPolicy('latest=7,daily=14,weekly=8,monthly=12,yearly=*'), {
      latest: 7,
      daily: 14,
      weekly: 8,
      monthly: 12,
      yearly: Infinity,
    });
    assert.deepEqual(parseKeepPolicy(' hourly = 24 , latest=0'), { hourly: 24, latest: 0 });
    assert.equal(formatKeepPolicy(parseKeepPolicy('yearly=*,latest=3')), 'latest=3,yearly=*');
  });

  for (const [spec, says] of [
    ['', /empty/],
    ['daily', /cannot read 'daily'/],
    ['daily=-1', /cannot read/],
    ['daily=1.5', /cannot read/],
    ['dayly=3', /unknown rule 'dayly'/],
    ['daily=3,daily=4', /'daily' given twice/],
    ['latest=0,daily=0', /keeps nothing/],
    ['daily=3,', /cannot read ''/],
    ['   ', /empty/],
    ['1daily=3', /cannot read '1daily=3'/],
  ] as const) {
    it(`refuses '${spec}' with one line`, () => {
      assert.throws(
        () => parseKeepPolicy(spec),
        (err: unknown) =>
          err instanceof UsageError && says.test(err.message) && !err.message.includes('\n'),
      );
    });
  }
});

describe('nameDate and seriesOf', () => {
  it('reads dashed and compact dates, with or without a time', () => {
    assert.equal(nameDate('home/2024-01-03')?.toISOString(), '2024-01-03T00:00:00.000Z');
    assert.equal(nameDate('root.20240103T0300')?.toISOString(), '2024-01-03T03:00:00.000Z');
    assert.equal(nameDate('x/snap_2024-02-29_13:05:09')?.toISOString(), '2024-02-29T13:05:09.000Z');
    assert.equal(nameDate('a/2023-12-31-backup')?.toISOString(), '2023-12-31T00:00:00.000Z');
  });

  it('finds no date in undated or impossible names, nor in the directory', () => {
    assert.equal(nameDate('home/latest'), undefined);
    assert.equal(nameDate('2024-01-03/snap'), undefined);
    assert.equal(nameDate('home/2023-02-29'), undefined);
    assert.equal(nameDate('home/12345678'), undefined);
    assert.equal(nameDate('home/2024-01-033'), undefined);
  });

  it('groups by the path with the date cut out', () => {
    assert.equal(seriesOf('home/2024-01-03'), 'home/{date}');
    assert.equal(seriesOf('b/root.20240103T0300'), 'b/root.{date}');
    assert.equal(seriesOf('home/latest'), 'home/latest');
  });
});

describe('applyKeepPolicy on a synthetic year of daily snapshots', () => {
  // 2024: 366 days, Monday 2024-01-01 to Tuesday 2024-12-31.
  const year = dailySnapshots('2024-01-01', 366);
  const policy = parseKeepPolicy('latest=7,daily=14,weekly=8,monthly=12');

  it('keeps exactly 14 days, 6 more Mondays and 12 firsts of the month (32)', () => {
    const d = applyKeepPolicy(year, policy);
    const days = Array.from({ length: 14 }, (_, i) => `home/2024-12-${String(18 + i)}`);
    const mondays = ['11-11', '11-18', '11-25', '12-02', '12-09', '12-16'].map(
      (x) => `home/2024-${x}`,
    );
    const firsts = Array.from(
      { length: 12 },
      (_, i) => `home/2024-${String(i + 1).padStart(2, '0')}-01`,
    );
    const expected = [...firsts, ...mondays, ...days].sort();
    assert.deepEqual(keptPaths(d), expected);
    assert.equal(d.kept.length, 32);
    assert.equal(d.dropped.length, 366 - 32);
  });

  it('keeps nothing the policy drops: each kept one has a rule, reasons are exact', () => {
    const d = applyKeepPolicy(year, policy);
    const reasons = new Map(d.kept.map((k) => [k.item.path, k.reasons]));
    assert.deepEqual(reasons.get('home/2024-12-31'), ['latest', 'daily']);
    assert.deepEqual(reasons.get('home/2024-12-23'), ['daily', 'weekly']);
    assert.deepEqual(reasons.get('home/2024-12-16'), ['weekly']);
    assert.deepEqual(reasons.get('home/2024-12-01'), ['monthly']);
    assert.deepEqual(reasons.get('home/2024-01-01'), ['monthly']);
    for (const k of d.kept) assert.ok(k.reasons.length > 0);
    const kept = new Set(keptPaths(d));
    for (const x of d.dropped) assert.ok(!kept.has(x.path));
  });

  it('keeps the first of each period, not the last', () => {
    const d = applyKeepPolicy(year, parseKeepPolicy('monthly=3'));
    assert.deepEqual(keptPaths(d), ['home/2024-10-01', 'home/2024-11-01', 'home/2024-12-01']);
  });

  it('counts periods back from the newest snapshot, also across years', () => {
    const twoYears = dailySnapshots('2023-01-01', 365 + 366);
    const d = applyKeepPolicy(twoYears, parseKeepPolicy('yearly=*,latest=2'));
    assert.deepEqual(keptPaths(d), [
      'home/2023-01-01',
      'home/2024-01-01',
      'home/2024-12-30',
      'home/2024-12-31',
    ]);
    assert.equal(applyKeepPolicy(twoYears, parseKeepPolicy('weekly=2')).kept.length, 2);
  });

  it('keeps undated and protected snapshots whatever the policy', () => {
    const items = [...year, { id: 'u', path: 'home/current' }];
    const d = applyKeepPolicy(items, parseKeepPolicy('latest=1'), new Set(['home-2024-03-05']));
    assert.deepEqual(
      d.kept.map((k) => [k.item.path, k.reasons]),
      [
        ['home/2024-03-05', ['protected']],
        ['home/2024-12-31', ['latest']],
        ['home/current', ['undated']],
      ],
    );
  });

  it('applies the policy to each series on its own', () => {
    const items = [
      ...dailySnapshots('2024-01-01', 10, 'home'),
      ...dailySnapshots('2024-01-01', 5, 'root'),
    ];
    const d = applyKeepPolicy(items, parseKeepPolicy('latest=2'));
    assert.deepEqual(keptPaths(d).sort(), [
      'home/2024-01-09',
      'home/2024-01-10',
      'root/2024-01-04',
      'root/2024-01-05',
    ]);
  });

  it('prefers a given time to the name, and keeps hourly by the hour', () => {
    const items = [
      { id: 'a', path: 's/2024-01-01', time: new Date('2024-05-01T10:10:00Z') },
      { id: 'b', path: 's/2024-01-02', time: new Date('2024-05-01T10:40:00Z') },
      { id: 'c', path: 's/2024-01-03', time: new Date('2024-05-01T11:05:00Z') },
    ];
    assert.deepEqual(
      applyKeepPolicy(items, parseKeepPolicy('hourly=2')).kept.map((k) => k.item.id),
      ['a', 'c'],
    );
  });
});

describe('nameDate: the accepted forms and ranges', () => {
  const iso = (path: string) => nameDate(path)?.toISOString();

  it('reads a time with or without colons, with or without seconds', () => {
    assert.equal(iso('x/2024-01-03T0300'), '2024-01-03T03:00:00.000Z');
    assert.equal(iso('x/2024-01-03T03:00'), '2024-01-03T03:00:00.000Z');
    assert.equal(iso('x/2024-01-03T030059'), '2024-01-03T03:00:59.000Z');
    assert.equal(iso('x/2024-01-03 03:00:59'), '2024-01-03T03:00:59.000Z');
    assert.equal(iso('root.20240103'), '2024-01-03T00:00:00.000Z');
    assert.equal(iso('root.20240103T030059'), '2024-01-03T03:00:59.000Z');
    assert.equal(iso('home/snap-20240103-daily'), '2024-01-03T00:00:00.000Z');
  });

  it('takes the last valid date of the name', () => {
    assert.equal(iso('a/2024-01-01.2024-02-02'), '2024-02-02T00:00:00.000Z');
    assert.equal(iso('x/20240101-backup-2024-02-02'), '2024-02-02T00:00:00.000Z');
    assert.equal(iso('x/2024-01-03-9999-99-99'), '2024-01-03T00:00:00.000Z');
  });

  it('accepts the edges of each field and refuses what lies beyond', () => {
    assert.equal(iso('x/1970-01-01'), '1970-01-01T00:00:00.000Z');
    assert.equal(iso('x/2024-01-03T23:59:59'), '2024-01-03T23:59:59.000Z');
    for (const bad of [
      'x/1969-12-31',
      'x/2024-00-10',
      'x/2024-13-10',
      'x/2024-01-03T10:60',
      'x/2024-01-03T10:00:60',
    ]) {
      assert.equal(nameDate(bad), undefined, bad);
    }
  });

  it('names the series of a snapshot at the top of its store', () => {
    assert.equal(seriesOf('root.20240103'), 'root.{date}');
  });
});

describe('applyKeepPolicy: order and periods', () => {
  it('counts months across a year boundary', () => {
    const d = applyKeepPolicy(dailySnapshots('2023-11-01', 92), parseKeepPolicy('monthly=2'));
    assert.deepEqual(keptPaths(d), ['home/2023-12-01', 'home/2024-01-01']);
  });

  it('decides the same for any input order, and lists oldest first', () => {
    const days = dailySnapshots('2024-01-01', 60);
    const shuffled = days.map((_, i) => days[(i * 17) % 60] as (typeof days)[number]);
    const policy = parseKeepPolicy('latest=3,weekly=2,monthly=2');
    const d = applyKeepPolicy(shuffled, policy);
    assert.deepEqual(d, applyKeepPolicy(days, policy));
    assert.deepEqual(keptPaths(d), [
      'home/2024-01-01',
      'home/2024-02-01',
      'home/2024-02-19',
      'home/2024-02-26',
      'home/2024-02-27',
      'home/2024-02-28',
      'home/2024-02-29',
    ]);
    assert.deepEqual(
      d.dropped.map((x) => x.path),
      days.map((x) => x.path).filter((p) => !keptPaths(d).includes(p)),
    );
  });

  it('merges series by time, then by path, whichever series comes first', () => {
    const home = dailySnapshots('2024-01-01', 3, 'home');
    const root = dailySnapshots('2024-01-01', 3, 'root');
    const expected = [
      'home/2024-01-01',
      'root/2024-01-01',
      'home/2024-01-02',
      'root/2024-01-02',
      'home/2024-01-03',
      'root/2024-01-03',
    ];
    for (const items of [
      [...home, ...root],
      [...root, ...home],
    ]) {
      assert.deepEqual(keptPaths(applyKeepPolicy(items, parseKeepPolicy('latest=3'))), expected);
    }
  });

  it('lists undated snapshots last, by path', () => {
    const items = ['u/c', 'u/a', 'u/b'].map((path) => ({ id: path, path }));
    assert.deepEqual(keptPaths(applyKeepPolicy(items, parseKeepPolicy('latest=1'))), [
      'u/a',
      'u/b',
      'u/c',
    ]);
  });
});
