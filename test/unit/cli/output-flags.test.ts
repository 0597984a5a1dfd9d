/** --json and --plan-format: parsed, and refused where they cannot apply (usage error, exit 2). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseButtersinkArgs } from '../../../src/cli/config.js';

describe('output flags', () => {
  it('default to text; --json and -n --plan-format dot parse', () => {
    const plain = parseButtersinkArgs(['/a/', '/b/'], '1');
    assert.ok(plain.ok);
    assert.equal(plain.config.flags.json, false);
    assert.equal(plain.config.flags.planFormat, 'text');
    const json = parseButtersinkArgs(['--json', '/b/'], '1');
    assert.ok(json.ok && json.config.flags.json);
    const dot = parseButtersinkArgs(['-n', '--plan-format', 'dot', '/a/', '/b/'], '1');
    assert.ok(dot.ok && dot.config.flags.planFormat === 'dot');
  });

  for (const [argv, why] of [
    [['--plan-format', 'dot', '/a/', '/b/'], /add -n/],
    [['-n', '--plan-format', 'dot', '/b/'], /give <src> and <dst>/],
    [['-n', '--json', '--plan-format', 'dot', '/a/', '/b/'], /give one/],
    [['-n', '--plan-format', 'svg', '/a/', '/b/'], /Allowed choices are text, dot/],
  ] as const) {
    it(`refuses ${argv.join(' ')}`, () => {
      const r = parseButtersinkArgs(argv, '1');
      assert.ok(!r.ok);
      assert.equal(r.exitCode, 2);
      assert.match(r.stderr, why);
    });
  }
});
