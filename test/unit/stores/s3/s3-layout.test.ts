import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DIFF_SUFFIXES,
  diffKey,
  lockKey,
  parseKey,
  sizeInfoKey,
  trashKey,
} from '../../../../src/stores/s3/s3-layout.js';

const A = '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';
const B = 'ABCDEF01-2345-6789-ABCD-EF0123456789';

describe('S3 key layout (the original buttersink)', () => {
  it('builds diff, .bs and trash keys', () => {
    assert.equal(
      diffKey('backups', 'home/2024-01-01', A, null),
      `backups/home/2024-01-01/${A}_None`,
    );
    assert.equal(diffKey('', 's1', A, B), `s1/${A}_${B.toLowerCase()}`);
    assert.equal(sizeInfoKey('backups', 'home/2024-01-01'), 'backups/home/2024-01-01.bs');
    assert.equal(trashKey(`backups/s1/${A}_None`), `trash/backups/s1/${A}_None`);
  });

  it('parses what it builds', () => {
    assert.deepEqual(parseKey('backups', diffKey('backups', 'home/s 1', A, B)), {
      kind: 'diff',
      path: 'home/s 1',
      to: A,
      from: B.toLowerCase(),
      suffix: '',
    });
    assert.deepEqual(parseKey('', `s1/${A}_None`), {
      kind: 'diff',
      path: 's1',
      to: A,
      from: null,
      suffix: '',
    });
    assert.deepEqual(parseKey('backups', 'backups/home/s1.bs'), { kind: 'info', path: 'home/s1' });
  });

  it('classifies trash, directories and unknown keys', () => {
    assert.equal(parseKey('', `trash/s1/${A}_None`).kind, 'trash');
    assert.equal(parseKey('p', `p/trash/s1/${A}_None`).kind, 'trash');
    assert.equal(parseKey('p', 'p/dir/').kind, 'directory');
    assert.equal(parseKey('p', 'p/README.txt').kind, 'unknown');
    assert.equal(parseKey('p', `p/${A}_None`).kind, 'unknown', 'a diff needs a snapshot path');
    assert.equal(parseKey('p', 'p/s1/notauuid_None').kind, 'unknown');
    assert.equal(parseKey('p', `p/s1/${A}_nope`).kind, 'unknown');
    assert.equal(parseKey('p', `other/s1/${A}_None`).kind, 'unknown');
  });

  it('reads archived diffs by their suffix (.zst, .age, .zst.age), which the original ignores', () => {
    const original = /^(?<fullpath>.*)\/(?<to>[-a-zA-Z0-9]*)_(?<from>[-a-zA-Z0-9]*)$/;
    for (const suffix of DIFF_SUFFIXES) {
      const key = diffKey('p', 'home/s1', A, B, suffix);
      assert.equal(key, `p/home/s1/${A}_${B.toLowerCase()}${suffix}`);
      assert.deepEqual(parseKey('p', key), {
        kind: 'diff',
        path: 'home/s1',
        to: A,
        from: B.toLowerCase(),
        suffix,
      });
      // buttersink 0.6.8 skips (with a warning) what it cannot read; never a .bs either.
      assert.equal(original.test(key), suffix === '', key);
      assert.equal(key.endsWith('.bs'), false);
    }
    assert.equal(parseKey('p', `p/s1/${A}_None.age.zst`).kind, 'unknown', 'encrypt, then compress');
    assert.equal(parseKey('p', `p/s1/${A}_None.gz`).kind, 'unknown');
    assert.equal(parseKey('p', `p/s1/${A}_None.zst.zst`).kind, 'unknown');
    assert.equal(parseKey('', `trash/s1/${A}_None.zst.age`).kind, 'trash');
  });

  it('knows the lock object, which the original skips (no `_`, no `.bs`)', () => {
    assert.equal(lockKey('backups'), 'backups/.buttersink-lock');
    assert.equal(lockKey(''), '.buttersink-lock');
    assert.equal(parseKey('backups', 'backups/.buttersink-lock').kind, 'lock');
    assert.equal(parseKey('', '.buttersink-lock').kind, 'lock');
    assert.equal(parseKey('p', 'p/s1/.buttersink-lock').kind, 'unknown', 'only at the prefix');
    // The original's diff pattern and its `.bs` test do not match it.
    const original = /^(?<fullpath>.*)\/(?<to>[-a-zA-Z0-9]*)_(?<from>[-a-zA-Z0-9]*)$/;
    assert.equal(original.test(lockKey('backups')), false);
    assert.equal(lockKey('backups').endsWith('.bs'), false);
  });
});
