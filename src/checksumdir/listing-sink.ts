/**
 * listing-sink: the sink stage that turns walked and hashed entries into the
 * sorted `NAME.ls` / `NAME.files` listings.
 *
 * Buffering and backpressure: an object-mode Writable that takes entries as fast
 * as they come and keeps one formatted line per entry and per file; sorting
 * happens once at the end, so memory grows with the tree (like `sort`), not
 * with file sizes.
 */
import { Writable } from 'node:stream';
import { destroyOnAbort, sinkStage, streamDone } from '../streams/stage.js';
import type { StageOptions, SinkStage } from '../streams/stage.js';
import type { FileHashFields } from './file-hash.js';
import type { WalkEntry } from './tree-walk.js';
import { ListingBuilder } from './listing.js';
import type { Listing } from './listing.js';

/** An entry as it arrives from tree-walk then file-hash. */
export type HashedWalkEntry = WalkEntry & FileHashFields;

/** Options of {@link listingSink}. */
export interface ListingSinkOptions extends StageOptions {
  /** Called for every entry, before it is listed. */
  onEntry?: (entry: HashedWalkEntry) => void;
  /** A regular file whose content could not be read: it is left out of `NAME.files`. */
  onUnhashed?: (entry: HashedWalkEntry, error: NodeJS.ErrnoException) => void;
  /** A FIFO, socket or device: listed in `NAME.ls`, never hashed (as `find -type f`). */
  onSpecial?: (entry: HashedWalkEntry) => void;
}

/**
 * Collects every entry into a {@link ListingBuilder}; `result` resolves with
 * the sorted listings once the stream finished, and rejects if it failed.
 */
export function listingSink(opts: ListingSinkOptions = {}): SinkStage<Listing> {
  const builder = new ListingBuilder();
  const stream = new Writable({
    objectMode: true,
    highWaterMark: 256,
    write(entry: HashedWalkEntry, _enc, callback) {
      opts.onEntry?.(entry);
      builder.addEntry(entry);
      const { stats } = entry;
      if (entry.sha256 !== undefined) builder.addFile(entry.relPath, entry.sha256);
      else if (entry.hashError !== undefined) opts.onUnhashed?.(entry, entry.hashError);
      else if (!stats.isFile() && !stats.isDirectory() && !stats.isSymbolicLink())
        opts.onSpecial?.(entry);
      callback();
    },
  });
  destroyOnAbort(stream, opts.signal, 'listing aborted');
  return sinkStage(
    'listing-sink',
    stream,
    streamDone(stream).then(() => builder.build()),
  );
}
