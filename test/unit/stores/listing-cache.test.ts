/** The btrfs store's kept listing: one listing per run under the lock, kept true by the store's own changes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SubvolumeInfo } from '../../../src/btrfs/subvolume-list.js';
import { ListingCache } from '../../../src/stores/btrfs/listing-cache.js';
import type { StoreListing } from '../../../src/stores/btrfs/listing-cache.js';

function sub(id: number, path: string, receivedUuid?: string): SubvolumeInfo {
  return {
    id,
    topLevel: 5,
    fsPath: `store/${path}`,
    absPath: `/mnt/store/${path}`,
    path,
    uuid: `own-${id}`,
    parentUuid: undefined,
    receivedUuid,
    generation: id,
    otransid: id,
    otime: undefined,
    readOnly: true,
  };
}

/** A listing function over a mutable "disk", counting its calls. */
function disk(subs: SubvolumeInfo[], marked: string[] = []) {
  const state = { subs, marked, calls: 0 };
  const list = async (): Promise<StoreListing> => {
    state.calls++;
    return {
      subs: [...state.subs],
      marked: new Set(state.marked),
      all: state.subs.map((s) => ({
        id: s.id,
        fsPath: s.fsPath,
        uuid: s.uuid,
        receivedUuid: s.receivedUuid,
      })),
    };
  };
  return { state, list };
}

describe('ListingCache', () => {
  it('lists every time until enabled, then once while enabled, and again after disable', async () => {
    const { state, list } = disk([sub(256, 'a', 'A')]);
    const cache = new ListingCache();
    await cache.get(list);
    await cache.get(list);
    assert.equal(state.calls, 2, 'not enabled: no listing is kept');
    cache.enable();
    await Promise.all([cache.get(list), cache.get(list)]);
    await cache.get(list);
    assert.equal(state.calls, 3, 'enabled: one listing for every use');
    cache.disable();
    await cache.get(list);
    assert.equal(state.calls, 4, 'disabled (lock given back): lists again');
    cache.enable();
    await cache.get(list);
    assert.equal(state.calls, 5, 'the next lock starts from a fresh listing');
  });

  it('a commit updates the kept listing without listing again', async () => {
    const { state, list } = disk([sub(256, 'a', 'A'), sub(257, 'b.part')], ['b']);
    const cache = new ListingCache();
    cache.enable();
    await cache.get(list);
    cache.changing();
    cache.committed(sub(300, 'b', 'B'));
    const after = await cache.get(list);
    assert.equal(state.calls, 1);
    assert.deepEqual(
      after.subs.map((s) => [s.path, s.id]),
      [
        ['a', 256],
        ['b', 300],
        ['b.part', 257],
      ],
    );
    assert.deepEqual([...after.marked], [], 'the committed path is no longer marked');
    assert.deepEqual(
      after.all.filter((s) => s.receivedUuid === 'B').map((s) => s.uuid),
      ['own-300'],
      'the whole filesystem knows its received UUID',
    );
  });

  it('a commit replaces the entry at the same path (a marked partial received again)', async () => {
    const { list } = disk([sub(256, 'a', 'A'), sub(257, 'b')], ['b']);
    const cache = new ListingCache();
    cache.enable();
    await cache.get(list);
    cache.changing();
    cache.committed(sub(301, 'b', 'B'));
    const after = await cache.get(list);
    assert.deepEqual(
      after.subs.map((s) => s.id),
      [256, 301],
    );
    assert.deepEqual(
      after.all.map((s) => s.id),
      [256, 301],
    );
  });

  it('a change begun and never committed (a failed receive) makes the next use list again', async () => {
    const { state, list } = disk([sub(256, 'a', 'A')]);
    const cache = new ListingCache();
    cache.enable();
    await cache.get(list);
    cache.changing();
    // The failed receive left a partial on disk.
    state.subs.push(sub(257, 'b.part'));
    const after = await cache.get(list);
    assert.equal(state.calls, 2);
    assert.deepEqual(
      after.subs.map((s) => s.path),
      ['a', 'b.part'],
    );
    await cache.get(list);
    assert.equal(state.calls, 2, 'the fresh listing is kept again');
  });

  it('a delete drops the subvolume from both lists; invalidate lists again', async () => {
    const { state, list } = disk([sub(256, 'a', 'A'), sub(257, 'b', 'B')]);
    const cache = new ListingCache();
    cache.enable();
    await cache.get(list);
    cache.deleted('a');
    const after = await cache.get(list);
    assert.equal(state.calls, 1);
    assert.deepEqual(
      after.subs.map((s) => s.path),
      ['b'],
    );
    assert.deepEqual(
      after.all.map((s) => s.id),
      [257],
    );
    cache.invalidate();
    await cache.get(list);
    assert.equal(state.calls, 2);
  });

  it('a failed listing is not kept', async () => {
    let fail = true;
    const { state, list } = disk([sub(256, 'a', 'A')]);
    const flaky = () => (fail ? Promise.reject(new Error('btrfs failed')) : list());
    const cache = new ListingCache();
    cache.enable();
    await assert.rejects(cache.get(flaky), /btrfs failed/);
    fail = false;
    await cache.get(flaky);
    await cache.get(flaky);
    assert.equal(state.calls, 1);
  });
});
