import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseQgroupShow } from '../../../src/btrfs/qgroup.js';

describe('parseQgroupShow', () => {
  it('maps level-0 qgroups to subvolume ids, skipping headers and higher levels', () => {
    const text = [
      'Qgroupid    Referenced    Exclusive   Path ',
      '--------    ----------    ---------   ---- ',
      '0/5              16384        16384   <toplevel>',
      '0/256          5259264      1064960   a b',
      '0/259            16384        16384   a b/nested',
      '1/100         99999999       999999   <0 member qgroups>',
      '',
    ].join('\n');
    const m = parseQgroupShow(text);
    assert.deepEqual([...m.keys()], [5, 256, 259]);
    assert.deepEqual(m.get(256), { total: 5259264, exclusive: 1064960 });
  });
  it('returns an empty map for empty output', () => {
    assert.equal(parseQgroupShow('').size, 0);
  });
});
