import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseButtersinkArgs } from '../../../src/cli/config.js';

function flags(argv: string[]) {
  const r = parseButtersinkArgs(argv, '0.0.0');
  assert.ok(r.ok, JSON.stringify(r));
  return r.config.flags;
}

describe('--no-compressed-data', () => {
  it('compressed data is on by default and off with --no-compressed-data', () => {
    assert.equal(flags(['/a/', '/b/']).compressedData, true);
    assert.equal(flags(['--no-compressed-data', '/a/', '/b/']).compressedData, false);
  });

  it('is listed in --help', () => {
    const r = parseButtersinkArgs(['--help'], '0.0.0');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.stdout, /--no-compressed-data/);
  });
});
