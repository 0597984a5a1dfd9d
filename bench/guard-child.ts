/**
 * One btrfs → btrfs transfer through the sync engine's own `transfer()`
 * (src/sync.ts), with the destination's `receive` forced to
 * `trustedSource: true` (unguarded: send → uuid-rewrite → stream-verify →
 * progress → uuid-rewrite → btrfs receive) or `false` (the same with
 * receive-guard before the destination's uuid-rewrite). Run by bench/guard.ts
 * under GNU time, one process per run, so each side has its own peak RSS.
 *
 *   node --import tsx bench/guard-child.ts SRC_DIR DST_DIR TO [FROM|-] trusted|guarded [SIZE]
 *
 * Prints one JSON line: seconds of `transfer()` alone (Node start-up, module
 * loading and listing both stores excluded), bytes moved and the receive
 * stages the destination used.
 */
import { edgeKey } from '../src/planner/plan-input.js';
import type { Transfer } from '../src/planner/plan.js';
import type { Volume } from '../src/planner/volume.js';
import { BtrfsStore } from '../src/stores/btrfs/btrfs-store.js';
import type { ReceiveOptions, ReceiveStages, Store } from '../src/stores/store.js';
import { transfer } from '../src/sync.js';

const [srcDir, dstDir, toPath, fromArg, mode, sizeArg] = process.argv.slice(2);
if (!srcDir || !dstDir || !toPath || !fromArg || (mode !== 'trusted' && mode !== 'guarded')) {
  throw new Error('usage: guard-child.ts SRC_DIR DST_DIR TO FROM|- trusted|guarded [SIZE]');
}
const fromPath = fromArg === '-' ? undefined : fromArg;
const trustedSource = mode === 'trusted';

const source = new BtrfsStore(
  { kind: 'btrfs', dir: srcDir, uri: `${srcDir}/` },
  { recordSizes: false },
);
const realDest = new BtrfsStore({ kind: 'btrfs', dir: dstDir, uri: `${dstDir}/` });
const stages: string[] = [];
// The real store, with only `receive`'s trustedSource set by this bench.
const dest = new Proxy(realDest, {
  get(target, prop) {
    if (prop === 'receive') {
      return async (to: Volume, from: Volume | null, opts: ReceiveOptions = {}) => {
        const r: ReceiveStages = await target.receive(to, from, { ...opts, trustedSource });
        stages.push(...r.transforms.map((s) => s.name), r.sink.name);
        return r;
      };
    }
    const v: unknown = Reflect.get(target, prop, target);
    return typeof v === 'function' ? v.bind(target) : v;
  },
}) as Store;

const { volumes } = await source.view('source');
const find = (path: string) => {
  const v = volumes.find((x) => x.path === path);
  if (!v) throw new Error(`${srcDir}: no snapshot ${path}`);
  return v;
};
const to = find(toPath);
const from = fromPath === undefined ? null : find(fromPath);
const t: Transfer = {
  to,
  from,
  size: Number(sizeArg ?? 0),
  estimated: false,
  store: 'source',
  height: from ? 2 : 1,
  key: edgeKey(to.uuid, from?.uuid ?? null),
};
const t0 = process.hrtime.bigint();
// noFuse: a local btrfs → btrfs transfer is otherwise fused (send straight into
// receive, no stage at all); this bench measures the stage path that streams from
// SSH peers and buckets take, with and without the guard.
const done = await transfer(source, dest, t, { noFuse: true });
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(`${JSON.stringify({ seconds, bytes: done.bytes, stages })}\n`);
