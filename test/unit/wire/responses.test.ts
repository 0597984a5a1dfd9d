import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../../src/wire/frame.js';
import {
  parseListPartialsResult,
  parseListResult,
  parseMeasureResult,
  parseReceiveResult,
  parseServerHello,
} from '../../../src/wire/responses.js';

const A = '0a8f3f4e-6c1b-4d5e-9f00-112233445566';
const B = '1b8f3f4e-6c1b-4d5e-9f00-112233445566';

describe('wire responses', () => {
  it('keeps the documented volume fields and drops malformed optional ones', () => {
    const r = parseListResult(
      {
        type: 'result',
        volumes: [
          { uuid: A, path: 'a', gen: 7, totalSize: 'x', parentUuid: B, extra: 1 },
          { uuid: B, path: 'b', ownUuid: 'not-a-uuid', exclusiveSize: 5 },
        ],
        diffs: [
          { to: B, from: A, size: 10, estimated: true },
          { to: B, from: 'bad', size: 10 },
          { to: A, from: null, size: -1 },
        ],
      },
      'ssh://h',
    );
    assert.deepEqual(r.volumes, [
      { uuid: A, path: 'a', gen: 7, parentUuid: B },
      { uuid: B, path: 'b', exclusiveSize: 5 },
    ]);
    assert.deepEqual(r.diffs, [{ to: B, from: A, size: 10, estimated: true }]);
  });

  it('rejects a listing without volumes or with a volume lacking its UUID', () => {
    assert.throws(() => parseListResult({ type: 'result' }, 'ssh://h'), ProtocolError);
    assert.throws(
      () => parseListResult({ type: 'result', volumes: [{ uuid: 'x', path: 'a' }] }, 'ssh://h'),
      /ssh:\/\/h: malformed volume in listing/,
    );
    assert.throws(() => parseListResult(null, 'ssh://h'), ProtocolError);
  });

  it('measure needs a non-negative size', () => {
    assert.equal(parseMeasureResult({ type: 'result', bytes: 42 }, 'p'), 42);
    for (const bytes of [undefined, -1, '42', Number.NaN]) {
      assert.throws(() => parseMeasureResult({ type: 'result', bytes }, 'p'), ProtocolError);
    }
  });

  it('partials and receive results keep only strings', () => {
    assert.deepEqual(parseListPartialsResult({ paths: ['a.part', 3, null, 'b.part'] }), [
      'a.part',
      'b.part',
    ]);
    assert.deepEqual(parseListPartialsResult({}), []);
    assert.equal(parseReceiveResult({ path: 'x' }, 'req'), 'x');
    assert.equal(parseReceiveResult({ path: 4 }, 'req'), 'req');
  });
});

describe('parseServerHello', () => {
  it('accepts a buttersink hello and keeps only numeric versions', () => {
    assert.deepEqual(
      parseServerHello({ type: 'hello', protocol: 'buttersink', versions: [1, '2', 3], mode: 'r' }),
      { versions: [1, 3] },
    );
    assert.deepEqual(parseServerHello({ type: 'hello', protocol: 'buttersink' }), {
      versions: [],
    });
  });

  it('returns undefined for anything else', () => {
    for (const m of [null, 'hello', { type: 'hello', protocol: 'other' }, { type: 'result' }]) {
      assert.equal(parseServerHello(m), undefined);
    }
  });
});
