import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseServerArgs } from '../../../src/server/server-main.js';
import {
  ServerRefusal,
  helloStreams,
  parseHelloStreams,
  parseRequest,
} from '../../../src/wire/protocol.js';
import { parseServerHello } from '../../../src/wire/responses.js';

const U = '0c5a4b8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d';
const to = { uuid: U, path: 's1' };

describe('send stream protocol 2 on the wire', () => {
  it("a server's hello carries its streams support; a client reads it back", () => {
    const streams = helloStreams({
      compressedSend: false,
      sendWhy: 'kernel\nsends 1',
      receiveVersion: 1,
      receiveWhy: 'x'.repeat(500),
    });
    assert.deepEqual(streams, {
      compressedSend: false,
      sendWhy: 'kernel sends 1',
      receiveVersion: 1,
      receiveWhy: 'x'.repeat(300),
    });
    const hello = { type: 'hello', protocol: 'buttersink', versions: [1, 2], mode: 'a', streams };
    assert.deepEqual(parseServerHello(JSON.parse(JSON.stringify(hello))), {
      versions: [1, 2],
      streams,
    });
  });

  it('an older server (no streams) or a malformed field means protocol 1 both ways', () => {
    assert.deepEqual(parseServerHello({ type: 'hello', protocol: 'buttersink', versions: [2] }), {
      versions: [2],
    });
    for (const bad of [
      null,
      'yes',
      { compressedSend: 'true', receiveVersion: 2 },
      { compressedSend: true },
      { compressedSend: true, receiveVersion: 0 },
      { compressedSend: true, receiveVersion: 2.5 },
    ]) {
      assert.equal(parseHelloStreams(bad), undefined, JSON.stringify(bad));
    }
    assert.deepEqual(parseHelloStreams({ compressedSend: true, receiveVersion: 2, sendWhy: 7 }), {
      compressedSend: true,
      receiveVersion: 2,
    });
  });

  it('a send request may ask for compressed data; anything but a boolean is refused', () => {
    const base = { type: 'request', op: 'send', to, from: null };
    assert.deepEqual(parseRequest(base), { op: 'send', to, from: null });
    assert.deepEqual(parseRequest({ ...base, compressedData: true }), {
      op: 'send',
      to,
      from: null,
      compressedData: true,
    });
    assert.deepEqual(parseRequest({ ...base, compressedData: false }), {
      op: 'send',
      to,
      from: null,
    });
    assert.throws(() => parseRequest({ ...base, compressedData: 'yes' }), ServerRefusal);
    // Only send takes it.
    assert.throws(
      () => parseRequest({ ...base, op: 'measure', compressedData: true }),
      ServerRefusal,
    );
  });

  it('buttersink --server --no-compressed-data', () => {
    assert.deepEqual(
      parseServerArgs(['--server', '--no-compressed-data', '--mode', 'a', '/srv/']),
      {
        mode: 'a',
        root: '/srv/',
        compressedData: false,
      },
    );
    assert.deepEqual(parseServerArgs(['--server', '--mode', 'a', '/srv/']), {
      mode: 'a',
      root: '/srv/',
    });
  });
});
