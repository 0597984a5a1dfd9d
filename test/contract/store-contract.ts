/**
 * The store contract suite (restic's backend test suite is the model): the
 * promises `src/stores/store.ts` documents, checked the same way against every
 * store kind. A test file calls {@link describeStoreContract} with a factory
 * that gives a fresh, empty store and two known snapshots as send streams; it
 * is imported from `test/unit` and `test/integration`, never run by itself.
 *
 * Cases: round trip (receive full then incremental, listed by `view`, content
 * identical, `send` gives a valid stream), `measure` returns a size, an
 * interrupted receive never looks final (hidden by `view`, listed by
 * `listPartials`, removed by `deletePartials`, and a rerun then succeeds),
 * receive refuses a name another snapshot holds, delete by kind (snapshot
 * stores `deleteVolume`, diff stores `deleteDiff`, the other one refuses),
 * lock (when present: a second lock fails with LockedError until released),
 * preflight (when present: a taken name is a NAME_CLASH, a free one nothing).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { StoreError } from '../../src/errors.js';
import { storesDiffs } from '../../src/planner/plan-input.js';
import type { DiffOffer } from '../../src/planner/plan-input.js';
import type { Volume } from '../../src/planner/volume.js';
import { streamVerify } from '../../src/stages/stream-verify.js';
import { runPipeline } from '../../src/streams/pipeline.js';
import { sinkStage, sourceStage } from '../../src/streams/stage.js';
import { LockedError } from '../../src/stores/lock.js';
import type { Store } from '../../src/stores/store.js';

/** A known snapshot: the send stream creating `volume` from `from`. */
export interface ContractSnapshot {
  readonly volume: Volume;
  readonly from: Volume | null;
  readonly bytes: Buffer;
}

/** What the factory gives each case. */
export interface ContractFixture {
  /** A fresh, empty store (the destination under test). */
  readonly store: Store;
  /** A full stream of a snapshot. */
  readonly full: ContractSnapshot;
  /** An incremental stream of a second snapshot from the first. */
  readonly incremental: ContractSnapshot;
  /**
   * Content of `snap` as the store should hold it, and of `volume` as the store
   * holds it, as comparable strings. Default: the sha256 of the stream given,
   * and of what the store's `send` of the same diff gives (byte identical).
   */
  readonly expectedContent?: (snap: ContractSnapshot) => Promise<string>;
  readonly storedContent?: (snap: ContractSnapshot) => Promise<string>;
  /** Byte offset where an interrupted receive breaks off. Default: half the full stream. */
  readonly interruptAt?: number;
  /** `trustedSource` passed to receive. Default false. */
  readonly trustedSource?: boolean;
  /** A second handle on the same store (another run), for the lock case. Default: the store itself. */
  readonly other?: () => Store;
  /** Removes what the case made (stores closed by the suite). */
  readonly cleanup?: () => Promise<void>;
}

/** Options of {@link describeStoreContract}. */
export interface ContractOptions {
  /** Skip the whole suite (missing prerequisites), with the reason. */
  skip?: boolean | string;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** All bytes a store's `send` gives. */
export async function sendBytes(store: Store, to: Volume, from: Volume | null): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write: (c: Buffer, _e, cb) => {
      chunks.push(c);
      cb();
    },
  });
  await runPipeline([store.send(to, from), streamVerify(), sinkStage('collect', sink)]);
  return Buffer.concat(chunks);
}

/** Receives `bytes` as `to` from `from` into `store` (the stream ends early with an error after `failAt` bytes). */
export async function receiveBytes(
  store: Store,
  to: Volume,
  from: Volume | null,
  bytes: Buffer,
  opts: { trustedSource?: boolean; failAt?: number } = {},
): Promise<void> {
  const { failAt } = opts;
  const source =
    failAt === undefined
      ? Readable.from([bytes])
      : Readable.from(
          (async function* () {
            for (let i = 0; i < failAt; i += 1 << 20) {
              yield bytes.subarray(i, Math.min(i + (1 << 20), failAt));
            }
            // Give the receiver time to act on what it got before the break.
            await new Promise((r) => setTimeout(r, 200));
            throw new Error('contract: source broke off');
          })(),
        );
  const receive = await store.receive(to, from, { trustedSource: opts.trustedSource ?? false });
  await runPipeline([sourceStage('contract source', source), ...receive.transforms, receive.sink]);
}

/** Defines the contract's cases for one store kind. */
export function describeStoreContract(
  name: string,
  makeStore: () => Promise<ContractFixture>,
  opts: ContractOptions = {},
): void {
  describe(`store contract: ${name}`, { skip: opts.skip ?? false }, () => {
    const open: ContractFixture[] = [];
    const fresh = async (): Promise<ContractFixture> => {
      const f = await makeStore();
      open.push(f);
      return f;
    };
    after(async () => {
      for (const f of open) {
        await f.store.close();
        await f.cleanup?.();
      }
    });
    const receive = (f: ContractFixture, s: ContractSnapshot, failAt?: number) =>
      receiveBytes(f.store, s.volume, s.from, s.bytes, {
        ...(f.trustedSource !== undefined ? { trustedSource: f.trustedSource } : {}),
        ...(failAt !== undefined ? { failAt } : {}),
      });
    const listed = async (f: ContractFixture) =>
      new Map((await f.store.view('dest')).volumes.map((v) => [v.uuid, v.path]));
    const expected = (f: ContractFixture, s: ContractSnapshot) =>
      f.expectedContent ? f.expectedContent(s) : Promise.resolve(sha256(s.bytes));
    const stored = async (f: ContractFixture, s: ContractSnapshot) =>
      f.storedContent ? f.storedContent(s) : sha256(await sendBytes(f.store, s.volume, s.from));

    it('starts empty: no snapshots, no partials', async () => {
      const f = await fresh();
      assert.equal((await f.store.view('dest')).volumes.length, 0);
      assert.deepEqual(await f.store.listPartials(), []);
    });

    it('round trip: full then incremental are listed, hold the same content, and send valid streams', async () => {
      const f = await fresh();
      await receive(f, f.full);
      await receive(f, f.incremental);
      const vols = await listed(f);
      assert.equal(vols.get(f.full.volume.uuid), f.full.volume.path);
      assert.equal(vols.get(f.incremental.volume.uuid), f.incremental.volume.path);
      for (const s of [f.full, f.incremental]) {
        assert.equal(await stored(f, s), await expected(f, s), `content of ${s.volume.path}`);
        // What it sends is a valid stream (sendBytes verifies it) and not empty.
        const sent = await sendBytes(f.store, s.volume, s.from);
        assert.ok(sent.length > 0);
      }
      assert.deepEqual(await f.store.listPartials(), []);
    });

    it('measure returns a size in bytes', async () => {
      const f = await fresh();
      await receive(f, f.full);
      await receive(f, f.incremental);
      for (const s of [f.full, f.incremental]) {
        const size = await f.store.measure(s.volume, s.from);
        assert.ok(Number.isSafeInteger(size) && size > 0, `measure gave ${size}`);
      }
    });

    it('an interrupted receive never looks final: hidden by view, listed and removed as a partial, rerun succeeds', async () => {
      const f = await fresh();
      const at = f.interruptAt ?? Math.floor(f.full.bytes.length / 2);
      await assert.rejects(receive(f, f.full, at));
      assert.equal((await listed(f)).has(f.full.volume.uuid), false, 'view hides the partial');
      const partials = await f.store.listPartials();
      assert.ok(partials.length >= 1, 'listPartials finds the interrupted receive');
      for (const p of partials) {
        assert.ok(p.where.includes(f.full.volume.path), `${p.where} names the snapshot`);
      }
      await f.store.deletePartials(partials);
      assert.deepEqual(await f.store.listPartials(), [], 'deletePartials removed them');
      assert.equal((await listed(f)).has(f.full.volume.uuid), false);
      await receive(f, f.full);
      assert.equal((await listed(f)).get(f.full.volume.uuid), f.full.volume.path);
      assert.equal(await stored(f, f.full), await expected(f, f.full));
    });

    it('receive refuses a name another snapshot holds, and leaves it as it was', async () => {
      const f = await fresh();
      await receive(f, f.full);
      const before = await stored(f, f.full);
      // The incremental's snapshot, landing under the full one's name.
      const clash: ContractSnapshot = {
        ...f.incremental,
        volume: { ...f.incremental.volume, path: f.full.volume.path },
      };
      await assert.rejects(receive(f, clash));
      const vols = await listed(f);
      assert.equal(vols.get(f.full.volume.uuid), f.full.volume.path);
      assert.equal(
        vols.has(f.incremental.volume.uuid),
        false,
        'the clashing snapshot is not listed',
      );
      assert.equal(await stored(f, f.full), before, 'the snapshot there is unchanged');
    });

    it('deletes by kind: snapshot stores deleteVolume, diff stores deleteDiff; the other refuses', async () => {
      const f = await fresh();
      await receive(f, f.full);
      await receive(f, f.incremental);
      const view = await f.store.view('dest');
      const target = view.volumes.find((v) => v.uuid === f.incremental.volume.uuid)!;
      if (storesDiffs(f.store.kind)) {
        const offer = view.diffs?.find(
          (d) => d.to === f.incremental.volume.uuid && d.from === f.full.volume.uuid,
        );
        assert.ok(offer, 'a diff store offers the diff it holds');
        await assert.rejects(f.store.deleteVolume(target), StoreError);
        await f.store.deleteDiff(offer);
      } else {
        const offer: DiffOffer = {
          to: f.incremental.volume.uuid,
          from: f.full.volume.uuid,
          size: 1,
          estimated: true,
          store: 'dest',
          atDest: true,
        };
        await assert.rejects(f.store.deleteDiff(offer), StoreError);
        await f.store.deleteVolume(target);
      }
      const vols = await listed(f);
      assert.equal(vols.has(f.incremental.volume.uuid), false, 'deleted');
      assert.equal(vols.get(f.full.volume.uuid), f.full.volume.path, 'the other one stays');
    });

    it('lock: a second lock fails with LockedError until the first is released', async (t) => {
      const f = await fresh();
      if (!f.store.lock) return t.skip('this store has no lock');
      const other = f.other?.() ?? f.store;
      if (other !== f.store) open.push({ ...f, store: other, cleanup: async () => {} });
      const held = await f.store.lock();
      try {
        await assert.rejects(other.lock!(), LockedError);
      } finally {
        await held.release();
      }
      const again = await other.lock!();
      await again.release();
    });

    it('preflight: a taken name is a NAME_CLASH, a free one nothing; changes nothing', async (t) => {
      const f = await fresh();
      if (!f.store.preflight) return t.skip('this store has no preflight');
      await receive(f, f.full);
      const clash = {
        to: { uuid: f.incremental.volume.uuid, path: f.full.volume.path },
        size: f.incremental.bytes.length,
        estimated: false,
      };
      const free = { ...clash, to: { ...clash.to, path: f.incremental.volume.path } };
      const problems = await f.store.preflight([clash], { spaceCheck: false });
      assert.deepEqual(
        problems.map((p) => p.code),
        ['NAME_CLASH'],
      );
      assert.ok(problems[0]!.message.includes(f.full.volume.path), problems[0]!.message);
      assert.deepEqual(await f.store.preflight([free], { spaceCheck: false }), []);
      assert.deepEqual([...(await listed(f)).keys()], [f.full.volume.uuid]);
    });
  });
}
