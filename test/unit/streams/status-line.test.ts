import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statusLine } from '../../../src/streams/status-line.js';

function output(isTTY: boolean) {
  const written: string[] = [];
  return { written, out: { isTTY, write: (t: string) => written.push(t) } };
}

describe('statusLine', () => {
  it('redraws in place and clears once on a TTY', () => {
    const { written, out } = output(true);
    const line = statusLine(out);
    assert.equal(line.enabled, true);
    line.clear();
    line.draw('a: 1.0 KiB');
    line.draw('a: 2.0 KiB');
    line.clear();
    line.clear();
    assert.deepEqual(written, ['\r\x1b[Ka: 1.0 KiB', '\r\x1b[Ka: 2.0 KiB', '\r\x1b[K']);
  });

  it('writes nothing to what is not a TTY', () => {
    const { written, out } = output(false);
    const line = statusLine(out);
    line.draw('x');
    line.clear();
    assert.equal(line.enabled, false);
    assert.deepEqual(written, []);
    assert.equal(statusLine(undefined).enabled, false);
  });
});
