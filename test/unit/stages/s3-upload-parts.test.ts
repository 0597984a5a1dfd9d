/**
 * The S3 upload path as the S3 store chains it (chunker with digests and a part
 * budget → skip-uploaded → s3-upload) against a fake client: how many parts are
 * alive at once, and which hashes each request carries.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { PAYLOAD_SHA256_MIDDLEWARE, s3Upload } from '../../../src/stages/s3-upload.js';
import { skipUploaded } from '../../../src/stages/skip-uploaded.js';
import type { RecordedPart } from '../../../src/stages/skip-uploaded.js';
import { chunker } from '../../../src/streams/chunker.js';
import type { Part } from '../../../src/streams/chunker.js';
import { PartBudget } from '../../../src/streams/part-budget.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { sourceStage } from '../../../src/streams/stage.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface SentPart {
  partNumber: number;
  body: Buffer;
  contentMd5: string;
  /** The x-amz-content-sha256 header the command's own middleware set, if any. */
  sha256: string | undefined;
}

interface Command {
  constructor: { name: string };
  input: Record<string, unknown>;
  middlewareStack: {
    identify(): string[];
    resolve(
      handler: (args: { request: { headers: Record<string, string> } }) => Promise<unknown>,
      context: object,
    ): (args: { input: unknown; request: { headers: Record<string, string> } }) => Promise<unknown>;
  };
}

/** The headers a command's own middleware adds to a bare request. */
async function ownHeaders(cmd: Command): Promise<Record<string, string>> {
  let seen: Record<string, string> = {};
  const run = cmd.middlewareStack.resolve(async (args) => {
    seen = args.request.headers;
    return { output: {}, response: {} };
  }, {});
  await run({ input: cmd.input, request: { headers: {} } });
  return seen;
}

/**
 * A client whose UploadPart takes a few milliseconds (slower than the source), and
 * counts the bytes of the parts it finished.
 */
function slowClient() {
  const parts: SentPart[] = [];
  const state = { doneBytes: 0 };
  const client = {
    send: async (cmd: Command) => {
      const name = cmd.constructor.name.replace(/Command$/, '');
      if (name === 'CreateMultipartUpload') return { UploadId: 'up-1' };
      if (name === 'CompleteMultipartUpload' || name === 'CopyObject') return {};
      if (name !== 'UploadPart' && name !== 'PutObject') throw new Error(`unexpected ${name}`);
      const body = cmd.input.Body as Buffer;
      const sha256 = cmd.middlewareStack
        .identify()
        .some((m) => m.startsWith(PAYLOAD_SHA256_MIDDLEWARE))
        ? (await ownHeaders(cmd))['x-amz-content-sha256']
        : undefined;
      await new Promise((resolve) => setTimeout(resolve, 2));
      // The bytes as they are when the request ends (a real client reads them until
      // then): a part buffer reused before its upload finished shows here.
      const sent = Buffer.from(body);
      parts.push({
        partNumber: (cmd.input.PartNumber as number | undefined) ?? 1,
        body: sent,
        contentMd5: cmd.input.ContentMD5 as string,
        sha256,
      });
      state.doneBytes += sent.length;
      return { ETag: `"${createHash('md5').update(sent).digest('hex')}"` };
    },
  } as unknown as S3Client;
  return { client, parts, state };
}

describe('s3 upload path: part budget and digests', () => {
  it('holds at most jobs + 1 parts between the source and the finished uploads', async () => {
    const jobs = 2;
    const partSize = 1 * MiB;
    const chunkSize = 64 * KiB;
    const total = 40 * partSize + 123;
    const { client, parts, state } = slowClient();
    const whole = createHash('sha256');
    let produced = 0;
    let mostAlive = 0;
    const source = new Readable({
      highWaterMark: chunkSize,
      read() {
        mostAlive = Math.max(mostAlive, produced - state.doneBytes);
        const n = Math.min(chunkSize, total - produced);
        if (n === 0) {
          this.push(null);
          return;
        }
        const c = randomBytes(n);
        whole.update(c);
        produced += n;
        this.push(c);
      },
    });
    const budget = new PartBudget(jobs + 1);
    await runPipeline([
      sourceStage('source', source),
      chunker({ partSize, hashes: ['md5', 'sha256'], budget }),
      skipUploaded({ uploaded: new Map() }),
      s3Upload({ client, bucket: 'b', key: 'k', jobs, budget, minPartSize: 1 }),
    ]);
    // Bytes read but not yet uploaded: the parts alive, plus the source's and the
    // chunker's byte buffers and the chunk being cut.
    const slack = 4 * chunkSize;
    assert.ok(
      mostAlive <= (jobs + 1) * partSize + slack,
      `${(mostAlive / MiB).toFixed(2)} MiB read ahead of the finished uploads`,
    );
    assert.ok(budget.peak <= jobs + 1);
    parts.sort((a, b) => a.partNumber - b.partNumber);
    assert.equal(parts.length, 41);
    const stored = createHash('sha256');
    for (const p of parts) stored.update(p.body);
    assert.equal(stored.digest('hex'), whole.digest('hex'), 'the parts are the stream, in order');
  });

  it("each request carries its part's MD5 (Content-MD5) and SHA-256 (signed payload hash)", async () => {
    const { client, parts } = slowClient();
    const data = randomBytes(2 * MiB + 5);
    const chunks = Array.from({ length: 40 }, (_, i) =>
      data.subarray((i * data.length) / 40, ((i + 1) * data.length) / 40),
    );
    await runPipeline([
      sourceStage('source', Readable.from(chunks, { objectMode: false })),
      chunker({ partSize: MiB, hashes: ['md5', 'sha256'] }),
      skipUploaded({ uploaded: new Map() }),
      s3Upload({ client, bucket: 'b', key: 'k', jobs: 2, minPartSize: 1 }),
    ]);
    assert.equal(parts.length, 3);
    for (const p of parts) {
      assert.equal(p.contentMd5, createHash('md5').update(p.body).digest('base64'));
      assert.equal(p.sha256, createHash('sha256').update(p.body).digest('hex'));
    }
  });

  it("skip-uploaded takes the chunker's MD5 as it is (no second pass over the part)", async () => {
    const data = Buffer.alloc(10, 1);
    const given = Buffer.alloc(16, 0xab); // not the MD5 of `data`: a second pass would show
    const recorded: RecordedPart = { etag: `"${given.toString('hex')}"`, size: 10 };
    const part: Part = {
      index: 0,
      partNumber: 1,
      offset: 0,
      data,
      last: true,
      digests: { md5: given },
    };
    const stage = skipUploaded({ uploaded: new Map([[1, recorded]]) });
    const out: unknown[] = [];
    stage.stream.on('data', (f: unknown) => out.push(f));
    stage.stream.end(part);
    await stage.result;
    assert.equal((out[0] as { md5: Buffer }).md5, given);
    assert.equal((out[0] as { uploadedETag?: string }).uploadedETag, recorded.etag);
  });
});
