import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { UsageError, isRetryable } from '../../../src/errors.js';
import { setLogger } from '../../../src/log.js';
import type { Warning } from '../../../src/log.js';
import {
  DEFAULT_S3_REQUEST_TIMEOUT_MS,
  S3TimeoutError,
  createS3Client,
  readBotoCredentials,
  resolveEndpoint,
} from '../../../src/s3/s3-client.js';

const CLEARED = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_S3',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
];

describe('S3 client: credentials and endpoint', () => {
  let dir: string;
  const saved = new Map<string, string | undefined>();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bs-s3-client-'));
    for (const k of [
      ...CLEARED,
      'AWS_SHARED_CREDENTIALS_FILE',
      'AWS_CONFIG_FILE',
      'AWS_EC2_METADATA_DISABLED',
    ]) {
      saved.set(k, process.env[k]);
      delete process.env[k];
    }
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'none-credentials');
    process.env.AWS_CONFIG_FILE = join(dir, 'none-config');
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
  });
  after(async () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('reads [Credentials] from a boto file', async () => {
    const p = join(dir, 'boto');
    await writeFile(
      p,
      '[Boto]\ndebug = 0\n[Credentials]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key: s3cr3t/key\n',
    );
    assert.deepEqual(readBotoCredentials(p), {
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 's3cr3t/key',
    });
    assert.equal(readBotoCredentials(join(dir, 'missing')), undefined);
    await writeFile(join(dir, 'partial'), '[Credentials]\naws_access_key_id = X\n');
    assert.equal(readBotoCredentials(join(dir, 'partial')), undefined);
  });

  it('falls back to ~/.boto when the SDK chain has nothing, with one notice that holds no secret', async () => {
    const p = join(dir, 'boto2');
    await writeFile(
      p,
      '[Credentials]\naws_access_key_id = AKIDBOTO\naws_secret_access_key = verysecret\n',
    );
    const warnings: Warning[] = [];
    const prev = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
    try {
      const client = createS3Client({ botoConfig: p, region: 'us-east-1' });
      const provider = client.config.credentials as () => Promise<{ accessKeyId: string }>;
      assert.equal((await provider()).accessKeyId, 'AKIDBOTO');
      await provider();
      client.destroy();
    } finally {
      setLogger(prev);
    }
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, 'BOTO_CREDENTIALS');
    assert.ok(!JSON.stringify(warnings).includes('verysecret'));
    assert.ok(!JSON.stringify(warnings).includes('AKIDBOTO'));
  });

  it('prefers the SDK chain (environment) over ~/.boto', async () => {
    const p = join(dir, 'boto3');
    await writeFile(p, '[Credentials]\naws_access_key_id = AKIDBOTO\naws_secret_access_key = x\n');
    process.env.AWS_ACCESS_KEY_ID = 'AKIDENV';
    process.env.AWS_SECRET_ACCESS_KEY = 'envsecret';
    try {
      const client = createS3Client({ botoConfig: p, region: 'us-east-1' });
      const provider = client.config.credentials as () => Promise<{ accessKeyId: string }>;
      assert.equal((await provider()).accessKeyId, 'AKIDENV');
      client.destroy();
    } finally {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it('takes the endpoint from the option, then AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL', () => {
    assert.equal(resolveEndpoint({}), undefined);
    process.env.AWS_ENDPOINT_URL = 'http://generic:9000';
    assert.equal(resolveEndpoint({}), 'http://generic:9000');
    process.env.AWS_ENDPOINT_URL_S3 = 'http://s3only:9000';
    assert.equal(resolveEndpoint({}), 'http://s3only:9000');
    assert.equal(resolveEndpoint({ endpoint: 'https://minio.local' }), 'https://minio.local');
    delete process.env.AWS_ENDPOINT_URL;
    delete process.env.AWS_ENDPOINT_URL_S3;
    assert.throws(() => resolveEndpoint({ endpoint: 'minio.local' }), UsageError);
    assert.throws(() => resolveEndpoint({ endpoint: 'ftp://x' }), UsageError);
  });

  it('uses path-style addressing for a custom endpoint', async () => {
    const client = createS3Client({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1' });
    assert.equal(client.config.forcePathStyle, true);
    client.destroy();
  });
});

describe('S3 client: request timeouts', () => {
  const saved = new Map<string, string | undefined>();
  let silent: NetServer;
  let stalling: HttpServer;
  let endpoint: (s: NetServer | HttpServer) => string;
  const connections: Socket[] = [];
  before(async () => {
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINT_URL']) {
      saved.set(k, process.env[k]);
    }
    process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    delete process.env.AWS_ENDPOINT_URL;
    // Accepts connections, reads requests, never answers.
    silent = createNetServer((s) => {
      connections.push(s);
      s.resume();
    });
    // Answers with a head and 100 of the 1000 body bytes it announced, then nothing.
    stalling = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(100));
    });
    stalling.on('connection', (s: Socket) => connections.push(s));
    for (const srv of [silent, stalling]) {
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    }
    endpoint = (s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of connections) s.destroy();
    for (const srv of [silent, stalling]) await new Promise((r) => srv.close(r));
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('refuses a timeout that is not a number of ms', () => {
    assert.throws(() => createS3Client({ requestTimeoutMs: -1 }), UsageError);
    assert.throws(() => createS3Client({ requestTimeoutMs: Number.NaN }), UsageError);
    assert.equal(DEFAULT_S3_REQUEST_TIMEOUT_MS, 60_000);
  });

  it(
    'a request never answered fails after every attempt with one line naming the operation, limit and attempts',
    { timeout: 10_000 },
    async () => {
      const client = createS3Client({
        endpoint: endpoint(silent),
        region: 'us-east-1',
        requestTimeoutMs: 200,
        maxAttempts: 3,
      });
      const started = performance.now();
      try {
        await assert.rejects(
          client.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' })),
          (err: unknown) => {
            assert.ok(err instanceof S3TimeoutError, String(err));
            assert.equal(err.message, 'HeadObject timed out after 0.2 s (3 attempts)');
            assert.equal(err.code, 'TIMEOUT');
            assert.equal(err.attempts, 3);
            assert.equal(isRetryable(err), false, 'callers do not retry it again');
            return true;
          },
        );
      } finally {
        client.destroy();
      }
      assert.ok(performance.now() - started >= 600, 'three attempts of 0.2 s each');
    },
  );

  it(
    'a response body that stops mid-way fails the read as a retryable stall',
    { timeout: 10_000 },
    async () => {
      const client = createS3Client({
        endpoint: endpoint(stalling),
        region: 'us-east-1',
        requestTimeoutMs: 200,
      });
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' }));
        await assert.rejects(
          (async () => {
            for await (const _ of res.Body as AsyncIterable<Uint8Array>) void _;
          })(),
          (err: unknown) => {
            assert.equal((err as Error).message, 'GetObject response stalled: no data for 0.2 s');
            assert.equal(isRetryable(err), true, 'the caller may fetch it again');
            return true;
          },
        );
      } finally {
        client.destroy();
      }
    },
  );
});
