import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreError } from '../../../src/errors.js';
import {
  ServerRefusal,
  checkRelativePath,
  modeAllows,
  parseClientHello,
  parseRequest,
  wireError,
} from '../../../src/wire/protocol.js';

const U = '0c5a4b8e-1d2f-4a3b-9c8d-7e6f5a4b3c2d';

function refused(fn: () => unknown, code: string, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ServerRefusal, String(err));
    assert.equal(err.wireCode, code, err.message);
    if (re) assert.match(err.message, re);
    return true;
  });
}

describe('protocol', () => {
  it('lets each mode do exactly its operations', () => {
    const ops = [
      'list',
      'measure',
      'send',
      'listPartials',
      'receive',
      'delete',
      'deletePartials',
      'ping',
      'lock',
      'preflight',
    ] as const;
    const allowed = (m: 'r' | 'a' | 'w') => ops.filter((op) => modeAllows(m, op));
    assert.deepEqual(allowed('r'), ['list', 'measure', 'send', 'listPartials', 'ping']);
    assert.deepEqual(allowed('a'), [
      'list',
      'measure',
      'send',
      'listPartials',
      'receive',
      'ping',
      'lock',
      'preflight',
    ]);
    assert.deepEqual(allowed('w'), [...ops]);
  });

  it('accepts well-formed requests', () => {
    assert.deepEqual(parseRequest({ type: 'request', op: 'list', role: 'source' }), {
      op: 'list',
      role: 'source',
    });
    assert.deepEqual(
      parseRequest({ type: 'request', op: 'send', to: { uuid: U, path: 'a/b c' }, from: null }),
      { op: 'send', to: { uuid: U, path: 'a/b c' }, from: null },
    );
    assert.deepEqual(parseRequest({ type: 'request', op: 'deletePartials', paths: ['x.part'] }), {
      op: 'deletePartials',
      paths: ['x.part'],
    });
  });

  it('accepts the version 2 requests: lock, ping, preflight, and lock tokens', () => {
    assert.deepEqual(parseRequest({ type: 'request', op: 'lock', command: 'buttersink a/ b/' }), {
      op: 'lock',
      command: 'buttersink a/ b/',
    });
    assert.deepEqual(parseRequest({ type: 'request', op: 'ping' }), { op: 'ping' });
    const to = { uuid: U, path: 's1' };
    assert.deepEqual(
      parseRequest({ type: 'request', op: 'receive', to, from: null, lock: '8c17b71904175990' }),
      { op: 'receive', to, from: null, lock: '8c17b71904175990' },
    );
    assert.deepEqual(
      parseRequest({
        type: 'request',
        op: 'preflight',
        transfers: [{ to, size: 10, estimated: false }],
        spaceCheck: true,
      }),
      { op: 'preflight', transfers: [{ to, size: 10, estimated: false }], spaceCheck: true },
    );
  });

  it('refuses malformed version 2 requests', () => {
    const to = { uuid: U, path: 's1' };
    const pre =
      (transfers: unknown, spaceCheck: unknown = true) =>
      () =>
        parseRequest({ type: 'request', op: 'preflight', transfers, spaceCheck });
    refused(pre([{ to: { uuid: U, path: '../x' }, size: 1, estimated: false }]), 'PATH');
    refused(pre([{ to, size: -1, estimated: false }]), 'BAD_REQUEST', /byte count/);
    refused(pre([{ to, size: 1.5, estimated: false }]), 'BAD_REQUEST');
    refused(pre([{ to, size: 1, estimated: 'no' }]), 'BAD_REQUEST');
    refused(pre([{ to, size: 1, estimated: false, x: 1 }]), 'BAD_REQUEST', /unexpected field/);
    refused(pre({}), 'BAD_REQUEST');
    refused(pre(new Array(10_001).fill({ to, size: 1, estimated: false })), 'BAD_REQUEST');
    refused(pre([], 'yes'), 'BAD_REQUEST');
    refused(
      () => parseRequest({ type: 'request', op: 'delete', volume: to, lock: '../../x' }),
      'BAD_REQUEST',
      /lock token/,
    );
    refused(() => parseRequest({ type: 'request', op: 'lock', command: 7 }), 'BAD_REQUEST');
    refused(
      () => parseRequest({ type: 'request', op: 'lock', command: 'x'.repeat(1001) }),
      'BAD_REQUEST',
    );
    refused(() => parseRequest({ type: 'request', op: 'ping', extra: 1 }), 'BAD_REQUEST');
    refused(
      () => parseRequest({ type: 'request', op: 'send', to, from: null, lock: 'abcdef0123' }),
      'BAD_REQUEST',
      /unexpected field "lock"/,
    );
  });

  it('refuses hostile requests', () => {
    const send =
      (to: unknown, extra = {}) =>
      () =>
        parseRequest({ type: 'request', op: 'send', to, from: null, ...extra });
    refused(() => parseRequest(null), 'BAD_REQUEST');
    refused(() => parseRequest([]), 'BAD_REQUEST');
    refused(
      () => parseRequest({ type: 'request', op: 'exec', command: 'rm -rf /' }),
      'BAD_REQUEST',
      /unknown operation "exec"/,
    );
    refused(() => parseRequest({ type: 'request', op: '__proto__' }), 'BAD_REQUEST');
    refused(send({ uuid: 'not-a-uuid', path: 'a' }), 'BAD_REQUEST', /not a UUID/);
    refused(send({ uuid: U.toUpperCase(), path: 'a' }), 'BAD_REQUEST');
    refused(send({ uuid: U, path: 'a', cmd: 'x' }), 'BAD_REQUEST', /unexpected field "cmd"/);
    refused(send({ uuid: U, path: 'a' }, { command: 'sh' }), 'BAD_REQUEST', /unexpected field/);
    refused(send({ uuid: U, path: '../etc' }), 'PATH', /leave the served directory/);
    refused(send({ uuid: U, path: 'a/../../etc' }), 'PATH');
    refused(send({ uuid: U, path: '/etc/shadow' }), 'PATH', /absolute/);
    refused(send({ uuid: U, path: 'a//b' }), 'PATH');
    refused(send({ uuid: U, path: './a' }), 'PATH');
    refused(send({ uuid: U, path: 'a\0b' }), 'PATH', /NUL/);
    refused(send({ uuid: U, path: 'x'.repeat(256) }), 'PATH', /too long/);
    refused(send({ uuid: U, path: 'a/'.repeat(3000) + 'b' }), 'PATH');
    refused(send({ uuid: U, path: 42 }), 'BAD_REQUEST');
    refused(() => parseRequest({ type: 'request', op: 'deletePartials', paths: ['../x'] }), 'PATH');
    refused(() => parseRequest({ type: 'request', op: 'list', role: 'both' }), 'BAD_REQUEST');
  });

  it('checks relative paths', () => {
    assert.deepEqual(checkRelativePath('home/2024-01-01'), ['home', '2024-01-01']);
    refused(() => checkRelativePath(''), 'PATH');
    refused(() => checkRelativePath('..'), 'PATH');
  });

  it('negotiates the version in the hello', () => {
    assert.equal(parseClientHello({ type: 'hello', version: 1 }), 1);
    assert.equal(parseClientHello({ type: 'hello', version: 2 }), 2);
    refused(
      () => parseClientHello({ type: 'hello', version: 3 }),
      'VERSION',
      /not supported.*same buttersink version/,
    );
    refused(() => parseClientHello({ type: 'request', op: 'list' }), 'PROTOCOL');
  });

  it('puts one line and a code on the wire, never a stack', () => {
    const err = new Error('first line\n    at secret (/root/x.ts:1:1)');
    assert.deepEqual(wireError(err), { type: 'error', code: 'FAILED', message: 'first line' });
    assert.equal(wireError(new StoreError('no')).code, 'STORE');
    assert.equal(wireError(new ServerRefusal('MODE', 'm')).code, 'MODE');
  });
});
