import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  escapeName,
  formatSha256sumLine,
  parseSha256sumLine,
} from '../../../src/checksumdir/sha256sum-line.js';

const HEX = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

test('plain names are not escaped', () => {
  assert.equal(formatSha256sumLine(HEX, Buffer.from('./a b é')).toString(), `${HEX}  ./a b é\n`);
  assert.equal(escapeName(Buffer.from('x')).escaped, false);
});

test('backslash, newline and CR escape the whole line', () => {
  const line = formatSha256sumLine(HEX, Buffer.from('./a\\b\nc\rd')).toString();
  assert.equal(line, `\\${HEX}  ./a\\\\b\\nc\\rd\n`);
});

test('parse undoes the escaping and rejects other lines', () => {
  for (const name of ['./plain', './a\\b\nc\rd', './sp  ace', './\\n']) {
    const line = formatSha256sumLine(HEX, Buffer.from(name));
    const parsed = parseSha256sumLine(line.subarray(0, line.length - 1));
    assert.ok(parsed);
    assert.equal(parsed.hex, HEX);
    assert.equal(parsed.name.toString(), name);
  }
  assert.equal(parseSha256sumLine(Buffer.from('nothex  ./x')), undefined);
  assert.equal(parseSha256sumLine(Buffer.from(`\\${HEX}  ./bad\\q`)), undefined);
});
