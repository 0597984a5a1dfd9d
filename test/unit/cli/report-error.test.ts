/**
 * How the CLI reports an error: the one line, the hint and the exit code are
 * chosen by the classes and codes in the error's cause chain, so a wrapper
 * (TransferError naming the snapshot) changes neither the hint nor the code.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import {
  CredentialsError,
  LocationError,
  RemoteError,
  StoreError,
  TransferError,
} from '../../../src/errors.js';
import { hintFor, reportError } from '../../../src/cli/report-error.js';

function report(err: unknown, srcArg?: string): { line: string; code: number } {
  const stderr = new PassThrough();
  const out = new PassThrough();
  const code = reportError({ stdout: out, stderr }, 'buttersink', err, { srcArg });
  return { line: String(stderr.read() ?? ''), code };
}

describe('reportError and hintFor', () => {
  it('a TransferError names the snapshot once and keeps its cause unchanged', () => {
    const cause = new StoreError('upload failed');
    const err = new TransferError('snaps/a', cause);
    assert.equal(err.message, 'snaps/a: upload failed');
    assert.equal(err.cause, cause);
    assert.equal(cause.message, 'upload failed', 'the cause is not rewritten');
    const named = new TransferError('snaps/a', new StoreError('snaps/a: already there'));
    assert.equal(named.message, 'snaps/a: already there', 'no second prefix');
  });

  it('chooses the exit code by class down the cause chain', () => {
    const usage = new LocationError('NO_SUCH_DIRECTORY', '/x: no such directory');
    assert.deepEqual(report(new TransferError('a', usage)), {
      line: 'buttersink: a: /x: no such directory\n',
      code: 2,
    });
    assert.equal(report(new TransferError('a', new StoreError('boom'))).code, 1);
  });

  it('chooses hints by class and code down the cause chain, not by text', () => {
    const location = new LocationError('SNAPSHOT_NOT_FOUND', 'not found');
    assert.match(hintFor(new TransferError('a', location), '/snaps') ?? '', /write \/snaps\//);
    const remote = new RemoteError('sh: buttersink: not found', { exitCode: 127 });
    assert.match(hintFor(new TransferError('a', remote), undefined) ?? '', /--remote-command/);
    const wrapped = new StoreError('listing failed', { cause: new CredentialsError('none') });
    assert.match(hintFor(new TransferError('a', wrapped), undefined) ?? '', /AWS_ACCESS_KEY_ID/);
    // The same words without the class give no hint.
    assert.equal(hintFor(new StoreError('no credentials; exit 127; not found'), '/s'), undefined);
  });
});
