/**
 * Whether a transfer sends compressed data (send stream protocol 2, `btrfs
 * send --proto 2 --compressed-data`): by default yes, wherever the source's
 * `btrfs send` and kernel can and the destination's `btrfs receive` reads
 * protocol 2. Compressed extents then move and land as they are (the copy
 * stays compressed) and a compressed filesystem sends less.
 *
 * - A source without {@link Store.streamSupport} (S3) sends the stream it
 *   holds, whatever its version: nothing to choose, nothing said.
 * - A destination without it (S3) stores any stream.
 * - Where either side cannot, the transfer sends protocol 1 and the run says
 *   so once: `sending uncompressed (protocol 1): <reason>` (warning
 *   `COMPRESSED_DATA_FALLBACK`).
 * - `compressedData: false` (`--no-compressed-data`) sends protocol 1, silently.
 *
 * The decision is made once per source/destination pair (stores are opened
 * per run, so once per run) and remembered.
 */
import { describeError } from '../errors.js';
import { debug, warn } from '../log.js';
import { formatLocation } from './uri.js';
import type { Store, StoreOpOptions } from './store.js';

/** What {@link decideCompressedData} decided. */
export interface CompressedDataDecision {
  /** Send with `--compressed-data`. */
  readonly compressedData: boolean;
  /** Why not, when it does not and the caller had wanted it: one line. */
  readonly fallback?: string;
}

/** Options of {@link compressedDataFor}. */
export interface CompressedDataOptions extends StoreOpOptions {
  /** False: never send compressed data (`--no-compressed-data`). Default true. */
  compressedData?: boolean;
}

const decided = new WeakMap<Store, WeakMap<Store, Promise<CompressedDataDecision>>>();

/**
 * Decides for a transfer from `source` to `dest`, asking each store what it
 * can do (see the module header). Never rejects for a store that cannot
 * answer: that side counts as unable, and the reason says why.
 */
export async function decideCompressedData(
  source: Pick<Store, 'streamSupport' | 'location'>,
  dest: Pick<Store, 'streamSupport' | 'location'>,
  opts: CompressedDataOptions = {},
): Promise<CompressedDataDecision> {
  if (opts.compressedData === false || !source.streamSupport) return { compressedData: false };
  const sig = opts.signal ? { signal: opts.signal } : {};
  const ask = async (store: Pick<Store, 'streamSupport'>) => {
    try {
      return await store.streamSupport!(sig);
    } catch (err) {
      opts.signal?.throwIfAborted();
      return { failed: describeError(err) };
    }
  };
  const [from, to] = await Promise.all([ask(source), dest.streamSupport ? ask(dest) : undefined]);
  const where = (s: Pick<Store, 'location'>) => formatLocation(s.location);
  if ('failed' in from) {
    return { compressedData: false, fallback: `${where(source)}: ${from.failed}` };
  }
  if (!from.compressedSend) {
    return { compressedData: false, fallback: `${where(source)}: ${from.sendWhy ?? 'cannot'}` };
  }
  if (to && 'failed' in to) {
    return { compressedData: false, fallback: `${where(dest)}: ${to.failed}` };
  }
  if (to && to.receiveVersion < 2) {
    return { compressedData: false, fallback: `${where(dest)}: ${to.receiveWhy ?? 'cannot'}` };
  }
  return { compressedData: true };
}

/**
 * Whether the transfers of this run from `source` to `dest` send compressed
 * data: {@link decideCompressedData} once per pair of stores, the fallback
 * warned about once, then remembered.
 */
export async function compressedDataFor(
  source: Store,
  dest: Store,
  opts: CompressedDataOptions = {},
): Promise<boolean> {
  if (opts.compressedData === false) return false;
  let byDest = decided.get(source);
  if (!byDest) decided.set(source, (byDest = new WeakMap()));
  let decision = byDest.get(dest);
  if (!decision) {
    decision = decideCompressedData(source, dest, opts).then((d) => {
      if (d.fallback) {
        warn('COMPRESSED_DATA_FALLBACK', `sending uncompressed (protocol 1): ${d.fallback}`);
      }
      debug('compressed data', { ...d });
      return d;
    });
    byDest.set(dest, decision);
    decision.catch(() => byDest.delete(dest));
  }
  return (await decision).compressedData;
}
