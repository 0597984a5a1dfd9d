import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statusLine } from '../../../src/streams/status-line.js';

function output(isTTY: boolean) {
  const written: string[] = [];
  return { written, out: { isTTY, columns: 80, write: (t: string) => written.push(t) } };
}

/** What a terminal would show: escape sequences removed. */
// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

describe('statusLine', () => {
  it('draws, redraws over what it drew (erasing it first) and clears once on a TTY', async () => {
    const { written, out } = output(true);
    const line = statusLine(out);
    assert.equal(line.enabled, true);
    await line.ready;
    line.clear();
    assert.deepEqual(written, [], 'nothing to clear before the first draw');
    line.draw('a: 1.0 KiB\noverall: 1 of 2');
    line.draw('a: 2.0 KiB\noverall: 1 of 2');
    line.clear();
    line.clear();
    assert.equal(written.length, 3, JSON.stringify(written));
    assert.equal(plain(written[0]!), 'a: 1.0 KiB\noverall: 1 of 2\n');
    // The redraw first erases both lines drawn (erase line, cursor up), then writes the new text.
    // eslint-disable-next-line no-control-regex
    assert.match(written[1]!, /^(\x1b\[\?2026h)?\x1b\[2K\x1b\[1A\x1b\[2K\x1b\[1A\x1b\[2K/);
    assert.equal(plain(written[1]!), 'a: 2.0 KiB\noverall: 1 of 2\n');
    assert.equal(plain(written[2]!), '', 'clearing only erases');
    // eslint-disable-next-line no-control-regex
    assert.match(written[2]!, /\x1b\[2K/);
  });

  it('draws on a terminal that reports no size (0 × 0, as under script), as if 80 × 24', async () => {
    const written: string[] = [];
    const line = statusLine({ isTTY: true, columns: 0, rows: 0, write: (t) => written.push(t) });
    await line.ready;
    line.draw('x: 1 B');
    assert.equal(plain(written.join('')), 'x: 1 B\n');
  });

  it('draws what was drawn before log-update loaded once it has, and not what was cleared', async () => {
    const { written, out } = output(true);
    const early = statusLine(out);
    early.draw('first');
    early.draw('latest');
    assert.deepEqual(written, [], 'nothing before it loaded');
    await early.ready;
    assert.equal(plain(written.join('')), 'latest\n', 'the latest text, once');
    const cleared = output(true);
    const gone = statusLine(cleared.out);
    gone.draw('x');
    gone.clear();
    await gone.ready;
    assert.deepEqual(cleared.written, [], 'a cleared line is not drawn late');
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
