/**
 * One parse for adjacent parsing stages (issue 12, "one pass where Node must
 * look"): in `runPipeline`, uuid-rewrite, receive-guard and stream-verify next
 * to each other run as one stream on one parser. The merged run must be the
 * chain it replaces: the same output bytes, the same results, the same error
 * at the same command, with each stage seeing what the stage before it wrote.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { AbortedError, StreamCorruptError, StreamRefusedError } from '../../../src/errors.js';
import { SendStreamParser } from '../../../src/btrfs/send-stream/parser.js';
import { passStage } from '../../../src/btrfs/send-stream/stream-pass.js';
import { runPipeline } from '../../../src/streams/pipeline.js';
import { progressTap } from '../../../src/streams/progress-tap.js';
import { sinkStage, sourceStage } from '../../../src/streams/stage.js';
import type { TransformStage } from '../../../src/streams/stage.js';
import { receiveGuard } from '../../../src/stages/receive-guard.js';
import { streamVerify } from '../../../src/stages/stream-verify.js';
import { uuidRewrite } from '../../../src/stages/uuid-rewrite.js';
import { collectSink } from '../streams/helpers.js';
import { FIXTURES, fixture, golden, randomChunks, rng } from '../../fixtures/streams/index.js';
import { HOSTILE } from '../../fixtures/hostile-streams.js';
import { byteInWriteData } from '../../fixtures/corrupt-stream.js';

const NEW_TARGET = '11111111-2222-4333-8444-555555555555';
const NEW_PARENT = '66666666-7777-4888-9999-aaaaaaaaaaaa';
const PIN = 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff';

/** The recorded stream's own UUID and parent UUID. */
function identityOf(name: string): { target: string; parent?: string } {
  const first = golden(name).events.find((e) => e.type === 'command') as {
    attributes: { name: string; value: string }[];
  };
  const attr = (n: string) => first.attributes.find((a) => a.name === n)?.value;
  return { target: attr('uuid')!, ...(attr('clone_uuid') ? { parent: attr('clone_uuid')! } : {}) };
}

/** An untrusted receive as sync() and the btrfs store build it: rewrite, guard + verify, rename. */
function receiveChain(name: string): TransformStage<unknown>[] {
  const own = identityOf(name);
  return [
    uuidRewrite({
      target: { uuid: NEW_TARGET },
      ...(own.parent ? { parent: { uuid: NEW_PARENT } } : {}),
    }),
    receiveGuard({
      target: NEW_TARGET,
      ...(own.parent ? { parent: NEW_PARENT } : {}),
      verify: true,
    }),
    uuidRewrite({ subvolumeName: 'x.part', ...(own.parent ? { pinParent: PIN } : {}) }),
  ];
}

/**
 * Checks that `out` holds only whole commands from before `failed`: the command
 * a failure names never reaches the receiver, not even in part.
 */
function onlyBefore(out: Buffer, failed: unknown, what: string): void {
  const index = (failed as { commandIndex?: number }).commandIndex ?? -1;
  const p = new SendStreamParser({ verify: 'none', collect: () => false, requireEnd: false });
  p.push(out);
  assert.equal(p.boundary, out.length, `${what}: a partial command was passed on`);
  assert.ok(p.commands <= Math.max(index, 0), `${what}: command ${index} or later passed on`);
}

/** Runs `fn` and returns the process warnings (e.g. MaxListenersExceeded) emitted meanwhile. */
async function warningsDuring(fn: () => Promise<void>): Promise<string[]> {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    await fn();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  return warnings.map((w) => w.message);
}

interface Run {
  out: Buffer;
  error: unknown;
  results: unknown[];
  streams: string[];
}

/** Runs `chunks` through `transforms`, merged or not; keeps what reached the sink even on failure. */
async function run(
  chunks: Buffer[],
  transforms: TransformStage<unknown>[],
  merge: boolean,
): Promise<Run> {
  const got: Buffer[] = [];
  const keep = new Writable({
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk);
      cb();
    },
  });
  const tee = sinkStage('tee', keep);
  try {
    const r = await runPipeline(
      [sourceStage('source', Readable.from(chunks, { objectMode: false })), ...transforms, tee],
      { merge },
    );
    return {
      out: Buffer.concat(got),
      error: undefined,
      results: r.results.slice(1, -1),
      streams: r.streams,
    };
  } catch (error) {
    return { out: Buffer.concat(got), error, results: [], streams: [] };
  }
}

describe('adjacent parsing stages share one parse', () => {
  it('runs rewrite, guard and rename as one stream, and names it so', async () => {
    const r = await run([fixture('incr-v1')], receiveChain('incr-v1'), true);
    assert.equal(r.error, undefined, String(r.error));
    assert.deepEqual(r.streams, ['source', 'uuid-rewrite+receive-guard+uuid-rewrite', 'tee']);
    const apart = await run([fixture('incr-v1')], receiveChain('incr-v1'), false);
    assert.deepEqual(apart.streams, [
      'source',
      'uuid-rewrite',
      'receive-guard',
      'uuid-rewrite',
      'tee',
    ]);
  });

  it('gives every recorded stream the same bytes and results as the chain, however chunked', async () => {
    for (const name of FIXTURES.filter((f) => !f.startsWith('multi'))) {
      const bytes = fixture(name);
      for (const seed of [1, 2, 3]) {
        const chunks = randomChunks(bytes, rng(seed), seed === 1 ? 7 : 9000);
        const merged = await run(chunks, receiveChain(name), true);
        const chained = await run(chunks, receiveChain(name), false);
        assert.equal(merged.error, undefined, `${name}: ${String(merged.error)}`);
        assert.ok(merged.out.equals(chained.out), `${name} seed ${seed}: output differs`);
        assert.ok(!merged.out.equals(bytes), `${name}: the rewrite changed nothing`);
        assert.deepEqual(merged.results, chained.results, name);
      }
    }
  });

  it('lets the guard see what the rewrite in front of it wrote', async () => {
    // The guard expects NEW_TARGET, which only the rewrite's output carries: were the
    // guard fed the parsed input instead, it would refuse the stream (target-uuid).
    const r = await run([fixture('full-v2')], receiveChain('full-v2').slice(0, 2), true);
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(r.streams[1], 'uuid-rewrite+receive-guard');
  });

  it('rewrite + verify (an S3 upload) is one stream with the chain’s output', async () => {
    for (const name of FIXTURES) {
      const stages = () => [uuidRewrite({ target: { uuid: NEW_TARGET } }), streamVerify()];
      const merged = await run([fixture(name)], stages(), true);
      const chained = await run([fixture(name)], stages(), false);
      assert.equal(merged.error, undefined, `${name}: ${String(merged.error)}`);
      assert.deepEqual(merged.streams, ['source', 'uuid-rewrite+stream-verify', 'tee']);
      assert.ok(merged.out.equals(chained.out), name);
      assert.deepEqual(merged.results, chained.results, name);
    }
  });

  it('fails a flipped bit anywhere as the chain does, passing on nothing of the bad command', async () => {
    const bytes = fixture('incr-v2');
    const good = (await run([bytes], receiveChain('incr-v2'), true)).out;
    const random = rng(42);
    for (let i = 0; i < 60; i++) {
      const bad = Buffer.from(bytes);
      const bit = Math.floor(random() * bytes.length * 8);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const chunks = randomChunks(bad, rng(i), 3000);
      const merged = await run(chunks, receiveChain('incr-v2'), true);
      const chained = await run(chunks, receiveChain('incr-v2'), false);
      assert.ok(merged.error, `bit ${bit}: the merged parse passed a damaged stream`);
      assert.equal(
        (merged.error as Error).constructor,
        (chained.error as Error).constructor,
        `bit ${bit}: ${String(merged.error)} vs ${String(chained.error)}`,
      );
      assert.ok(
        merged.error instanceof StreamCorruptError || merged.error instanceof StreamRefusedError,
      );
      onlyBefore(merged.out, merged.error, `bit ${bit}`);
      assert.ok(
        merged.out.equals(good.subarray(0, merged.out.length)),
        `bit ${bit}: damage passed`,
      );
    }
  });

  it('refuses every hostile stream with the rule the guard alone names', async () => {
    const ctx = {
      target: NEW_TARGET,
      name: 'snap',
      parent: NEW_PARENT,
      canary: '/tmp/canary',
      outsideUuid: '01234567-89ab-4cde-8f01-23456789abcd',
      parentSymlink: 'link',
    };
    let refused = 0;
    for (const c of HOSTILE) {
      const bytes = await c.build(ctx);
      const stages = () => [
        uuidRewrite({ target: { uuid: NEW_TARGET } }),
        receiveGuard({ target: NEW_TARGET, ...(c.incremental ? { parent: NEW_PARENT } : {}) }),
        uuidRewrite({ subvolumeName: 'snap.part' }),
      ];
      const merged = await run([bytes], stages(), true);
      const chained = await run([bytes], stages(), false);
      if (!chained.error) {
        // Cases about what the parent holds on disk need a filesystem (integration tests).
        assert.equal(merged.error, undefined, c.name);
        continue;
      }
      refused++;
      assert.ok(merged.error, `${c.name}: passed`);
      const rule = (e: unknown) =>
        e instanceof StreamRefusedError
          ? e.rule
          : e instanceof StreamCorruptError
            ? 'corrupt'
            : String(e);
      assert.equal(rule(merged.error), rule(chained.error), c.name);
      onlyBefore(merged.out, merged.error, c.name);
    }
    assert.ok(refused >= HOSTILE.length - 3, `only ${refused} of ${HOSTILE.length} refused`);
  });

  it('checks what the strictest member asks: every CRC, the lowest version, the END held', async () => {
    const bytes = fixture('full-v2');
    const at = byteInWriteData(bytes);
    const bad = Buffer.from(bytes);
    bad[at]! ^= 0x10;
    const target = { uuid: NEW_TARGET };
    // rewrite (its own commands' CRCs) + verify (every CRC): the damaged WRITE is caught.
    const both = await run([bad], [uuidRewrite({ target }), streamVerify()], true);
    assert.ok(both.error instanceof StreamCorruptError, `got ${String(both.error)}`);
    // rewrite (its commands' CRCs) + a guard that checks no CRC: a damaged SUBVOL is not laundered.
    const subvol = Buffer.from(bytes);
    subvol[17 + 10 + 4 + 2]! ^= 0x01; // a byte of the SUBVOL's path: the stream's first command
    const own = identityOf('full-v2').target;
    const laundered = await run(
      [subvol],
      [uuidRewrite({ target }), receiveGuard({ target: NEW_TARGET }), uuidRewrite({})],
      true,
    );
    assert.ok(laundered.error instanceof StreamCorruptError, `got ${String(laundered.error)}`);
    assert.notEqual(own, NEW_TARGET);
    // A version cap of 1 in one member refuses a version 2 stream, whatever the others allow.
    const v1only = await run(
      [bytes],
      [receiveGuard({ target: own, verify: true }), streamVerify({ maxVersion: 1 })],
      true,
    );
    assert.ok(v1only.error instanceof StreamCorruptError, `got ${String(v1only.error)}`);
    // One member that holds END: trailing bytes after END fail it, and END never passes.
    const trailing = await run(
      [bytes, Buffer.from('garbage')],
      [uuidRewrite({ target }), streamVerify()],
      true,
    );
    assert.ok(trailing.error instanceof StreamCorruptError, `got ${String(trailing.error)}`);
    assert.ok(trailing.out.length <= bytes.length - 10, 'the END command was passed on');
  });

  it('runs a pass of one’s own (passStage) in the shared parse, one that only counts too', async () => {
    const seen: number[] = [];
    const counter = passStage(
      'count',
      {
        verify: 'none',
        reads: () => true,
        holds: () => false,
        header: (_ev, streams) => void seen.push(streams),
        end: (totals) => totals.commands,
      },
      undefined,
    );
    const r = await run(
      [fixture('full-v1')],
      [uuidRewrite({ target: { uuid: NEW_TARGET } }), counter],
      true,
    );
    assert.equal(r.error, undefined, String(r.error));
    assert.deepEqual(r.streams, ['source', 'uuid-rewrite+count', 'tee']);
    assert.equal(
      await counter.result,
      golden('full-v1').events.filter((e) => e.type === 'command').length,
    );
    assert.deepEqual(seen, [1]);
  });

  it('merges only stages that sit next to each other', async () => {
    const target = { uuid: NEW_TARGET };
    const r = await run(
      [fixture('full-v1')],
      [
        uuidRewrite({ target }),
        streamVerify(),
        progressTap({ onProgress: () => undefined }),
        streamVerify(),
        uuidRewrite({ subvolumeName: 'x.part' }),
      ],
      true,
    );
    assert.equal(r.error, undefined, String(r.error));
    assert.deepEqual(r.streams, [
      'source',
      'uuid-rewrite+stream-verify',
      'progress',
      'stream-verify+uuid-rewrite',
      'tee',
    ]);
    const alone = await run(
      [fixture('full-v1')],
      [
        progressTap({ onProgress: () => undefined }),
        streamVerify(),
        progressTap({ onProgress: () => undefined }),
      ],
      true,
    );
    assert.deepEqual(alone.streams, ['source', 'progress', 'stream-verify', 'progress', 'tee']);
  });

  it('leaves no abort listener behind on a signal that outlives many pipelines', async () => {
    const warnings = await warningsDuring(async () => {
      const ac = new AbortController();
      for (let i = 0; i < 15; i++) {
        const r = await run([fixture('full-v1')], [streamVerify({ signal: ac.signal })], true);
        assert.equal(r.error, undefined, String(r.error));
      }
    });
    assert.deepEqual(warnings, []);
  });

  it('leaves a stage whose stream was already used to run alone', async () => {
    const [rewrite, guard, rename] = receiveChain('full-v1');
    void guard!.stream; // built: it runs as its own stream
    const r = await run([fixture('full-v1')], [rewrite!, guard!, rename!], true);
    assert.equal(r.error, undefined, String(r.error));
    assert.deepEqual(r.streams, ['source', 'uuid-rewrite', 'receive-guard', 'uuid-rewrite', 'tee']);
  });

  it('adds one abort listener per signal, however many stages merge (no MaxListeners warning)', async () => {
    const warnings = await warningsDuring(async () => {
      const ac = new AbortController();
      const stages = Array.from({ length: 8 }, () => streamVerify({ signal: ac.signal }));
      const r = await run([fixture('full-v1')], stages, true);
      assert.equal(r.error, undefined, String(r.error));
      assert.equal(r.streams.length, 3, 'the eight ran as one stream');
    });
    assert.deepEqual(warnings, []);
  });

  it('rejects every member’s result with AbortedError on abort', async () => {
    const ac = new AbortController();
    const stages = [
      uuidRewrite({ target: { uuid: NEW_TARGET }, signal: ac.signal }),
      streamVerify({ signal: ac.signal }),
    ];
    const endless = new Readable({ read() {} });
    endless.push(fixture('full-v1').subarray(0, 100));
    const pipelineRun = runPipeline([sourceStage('s', endless), ...stages, collectSink()], {
      signal: ac.signal,
    });
    setImmediate(() => ac.abort());
    await assert.rejects(pipelineRun, AbortedError);
    for (const s of stages) await assert.rejects(s.result, AbortedError);
  });
});
