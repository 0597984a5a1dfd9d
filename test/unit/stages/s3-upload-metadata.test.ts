/**
 * s3-upload's metadata paths against a recording fake client: what is sent, in which
 * order. (The real thing against moto_server: test/integration/s3-integrity.test.ts.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Upload } from '../../../src/stages/s3-upload.js';
import type { S3UploadOptions, UploadFrame } from '../../../src/stages/s3-upload.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { sourceStage } from '../../../src/streams/stage.js';

interface Sent {
  command: string;
  input: Record<string, unknown>;
}

function fakeClient(): { client: S3Client; sent: Sent[] } {
  const sent: Sent[] = [];
  const md5 = (b: unknown) =>
    `"${createHash('md5')
      .update(b as Buffer)
      .digest('hex')}"`;
  const client = {
    send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const command = cmd.constructor.name.replace(/Command$/, '');
      sent.push({ command, input: cmd.input });
      switch (command) {
        case 'CreateMultipartUpload':
          return { UploadId: 'up-1' };
        case 'UploadPart':
        case 'PutObject':
          return { ETag: md5(cmd.input.Body) };
        case 'CompleteMultipartUpload':
          return { ETag: '"complete-2"' };
        case 'CopyObject':
          return { CopyObjectResult: { ETag: '"copied"' } };
        case 'UploadPartCopy':
          return { CopyPartResult: { ETag: '"pc"' } };
        default:
          throw new Error(`unexpected ${command}`);
      }
    },
  } as unknown as S3Client;
  return { client, sent };
}

function frames(sizes: number[], uploaded: Record<number, string> = {}): UploadFrame[] {
  let offset = 0;
  return sizes.map((n, i) => {
    const data = Buffer.alloc(n, i + 1);
    const f: UploadFrame = {
      index: i,
      partNumber: i + 1,
      offset,
      data,
      last: i === sizes.length - 1,
      ...(uploaded[i + 1] !== undefined ? { uploadedETag: uploaded[i + 1]! } : {}),
    };
    offset += n;
    return f;
  });
}

async function upload(
  parts: UploadFrame[],
  extra: Partial<S3UploadOptions>,
  events: string[] = [],
) {
  const { client, sent } = fakeClient();
  const sink = s3Upload({
    client,
    bucket: 'bkt',
    key: 'p/s/u_None',
    minPartSize: 1,
    metadata: { 'buttersink-sha256': 'pending' },
    finalMetadata: ({ bytes }) => {
      events.push(`finalMetadata after ${sent.length} requests`);
      return { 'buttersink-sha256': 'f'.repeat(64), size: String(bytes) };
    },
    ...extra,
  });
  const source = sourceStage('frames', Readable.from(parts, { objectMode: true }));
  let error: unknown;
  try {
    await runPipeline([source, sink]);
  } catch (err) {
    error = err;
  }
  const result = await sink.result.catch((e: unknown) => e);
  return { sent, error, result };
}

describe('s3-upload metadata', () => {
  it('a one-part stream: one PutObject with the final metadata, no multipart upload', async () => {
    const { sent, error, result } = await upload(frames([100]), {});
    assert.equal(error, undefined);
    assert.deepEqual(
      sent.map((s) => s.command),
      ['PutObject'],
    );
    const put = sent[0]!.input;
    assert.deepEqual(put.Metadata, { 'buttersink-sha256': 'f'.repeat(64), size: '100' });
    assert.equal(put.ServerSideEncryption, 'AES256');
    assert.equal(typeof put.ContentMD5, 'string');
    assert.equal((result as { uploadId?: string }).uploadId, undefined);
  });

  it('multipart: created pending, completed, then copied onto itself with the final metadata', async () => {
    const events: string[] = [];
    const { sent, error, result } = await upload(frames([10, 10, 5]), {}, events);
    assert.equal(error, undefined);
    assert.deepEqual(
      sent.map((s) => s.command),
      [
        'CreateMultipartUpload',
        'UploadPart',
        'UploadPart',
        'UploadPart',
        'CompleteMultipartUpload',
        'CopyObject',
      ],
    );
    assert.deepEqual(sent[0]!.input.Metadata, { 'buttersink-sha256': 'pending' });
    assert.deepEqual(
      events,
      ['finalMetadata after 4 requests'],
      'asked after every part, before completing',
    );
    const copy = sent[5]!.input;
    assert.equal(copy.Key, 'p/s/u_None');
    assert.equal(copy.CopySource, 'bkt/p/s/u_None');
    assert.equal(copy.CopySourceIfMatch, '"complete-2"');
    assert.equal(copy.MetadataDirective, 'REPLACE');
    assert.deepEqual(copy.Metadata, { 'buttersink-sha256': 'f'.repeat(64), size: '25' });
    assert.equal(copy.ServerSideEncryption, 'AES256');
    assert.equal((result as { etag?: string }).etag, '"copied"');
  });

  it('a resumed upload (skipped parts) gets its final metadata too', async () => {
    const { sent, error } = await upload(frames([10, 10, 5], { 1: '"a"', 2: '"b"' }), {
      uploadId: 'open-1',
    });
    assert.equal(error, undefined);
    assert.deepEqual(
      sent.map((s) => s.command),
      ['UploadPart', 'CompleteMultipartUpload', 'CopyObject'],
    );
    assert.deepEqual(sent[2]!.input.Metadata, { 'buttersink-sha256': 'f'.repeat(64), size: '25' });
  });

  it('above maxSingleCopy the metadata is set by a multipart copy (CreateMultipartUpload)', async () => {
    const { sent, error } = await upload(frames([10, 10]), { maxSingleCopy: 5 });
    assert.equal(error, undefined);
    const cmds = sent.map((s) => s.command);
    assert.deepEqual(cmds.slice(4), [
      'CreateMultipartUpload',
      'UploadPartCopy',
      'CompleteMultipartUpload',
    ]);
    assert.deepEqual(sent[4]!.input.Metadata, { 'buttersink-sha256': 'f'.repeat(64), size: '20' });
    assert.equal(sent[5]!.input.CopySourceIfMatch, '"complete-2"');
  });

  it('when the final metadata cannot be given, nothing is completed or stored', async () => {
    for (const sizes of [[10], [10, 10]]) {
      const { sent, error } = await upload(frames(sizes), {
        finalMetadata: () => {
          throw new Error('digest not ready');
        },
      });
      assert.match(String(error), /digest not ready/);
      assert.ok(
        !sent.some((s) =>
          ['PutObject', 'CompleteMultipartUpload', 'CopyObject'].includes(s.command),
        ),
        sent.map((s) => s.command).join(' '),
      );
    }
  });
});
