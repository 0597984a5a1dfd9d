/**
 * What one listing of a btrfs store told, kept for as long as nothing but
 * this store can change it: while the store holds its lock (one run, see
 * `lock.ts`). A listing walks the whole filesystem (`btrfs subvolume list`
 * takes tens of milliseconds per thousand subvolumes), and a run needs one at
 * its start (the view) and one before each receive (the exact parent copy and
 * which subvolumes carry its UUID); with the cache a run lists once.
 *
 * Under the lock, the store's set of subvolumes changes only through this
 * store, which tells the cache: {@link ListingCache.committed} when a received
 * snapshot became complete, {@link ListingCache.deleted} when one was deleted,
 * {@link ListingCache.invalidate} when anything else changed (partials
 * removed). A change that was begun ({@link ListingCache.changing}) and never
 * committed (a receive that failed: it left a partial, or a subvolume whose
 * checks failed) makes the next {@link ListingCache.get} list again, so a
 * failure never leaves a listing that misses what it left behind.
 *
 * The rest of the filesystem is outside the lock: a subvolume that another
 * process creates elsewhere during the run is seen by the next run. That is
 * enough for the one thing the whole filesystem's listing decides, whether
 * `btrfs receive` would find the intended parent copy by received UUID:
 * a receive is still checked against its parent's own UUID before it counts
 * as complete (`checkReceived`), and with `btrfs send -p` and no `-c`, clone
 * sources are looked up exactly as the parent is.
 */
import type { FilesystemSubvolume, SubvolumeInfo } from '../../btrfs/subvolume-list.js';

/** One listing of a btrfs store. */
export interface StoreListing {
  /** Every subvolume below the store directory (partials and read-write ones included), by path. */
  readonly subs: readonly SubvolumeInfo[];
  /** Store-relative paths a receiving marker marks (see `receiving-marker.ts`). */
  readonly marked: ReadonlySet<string>;
  /** Every subvolume of the filesystem: what `btrfs receive` searches by UUID. */
  readonly all: readonly FilesystemSubvolume[];
}

/** See the module header. */
export class ListingCache {
  #enabled = false;
  #held: Promise<StoreListing> | undefined;
  /** Changes begun and not yet committed. */
  #pending = 0;

  /** Keeps listings from now on (the store took its lock). */
  enable(): void {
    this.#enabled = true;
  }

  /** Forgets the listing and keeps none (the store gave its lock back). */
  disable(): void {
    this.#enabled = false;
    this.invalidate();
  }

  /** Forgets the listing: the next {@link get} lists. */
  invalidate(): void {
    this.#held = undefined;
    this.#pending = 0;
  }

  /**
   * The kept listing, else a fresh one from `list` (kept when enabled). A
   * failed listing is not kept.
   */
  get(list: () => Promise<StoreListing>): Promise<StoreListing> {
    if (!this.#enabled) return list();
    if (this.#pending > 0) this.invalidate();
    if (!this.#held) {
      const listing = list();
      this.#held = listing;
      listing.catch(() => {
        if (this.#held === listing) this.#held = undefined;
      });
    }
    return this.#held;
  }

  /** A change begins that only {@link committed} completes (a receive). */
  changing(): void {
    if (this.#held) this.#pending++;
  }

  /**
   * `sub` is complete (a received snapshot passed its checks): it replaces any
   * entry at its path or with its id, is no longer marked, and ends one change.
   */
  committed(sub: SubvolumeInfo): void {
    if (this.#pending > 0) this.#pending--;
    this.#update((l) => {
      // What was at its path is gone (a partial removed before the receive).
      const replaced = new Set(l.subs.filter((s) => s.path === sub.path).map((s) => s.id));
      replaced.add(sub.id);
      return {
        subs: [...l.subs.filter((s) => !replaced.has(s.id)), sub].sort(byPath),
        marked: new Set([...l.marked].filter((m) => m !== sub.path)),
        all: [
          ...l.all.filter((s) => !replaced.has(s.id)),
          { id: sub.id, fsPath: sub.fsPath, uuid: sub.uuid, receivedUuid: sub.receivedUuid },
        ],
      };
    });
  }

  /** The subvolume at store-relative `path` was deleted. */
  deleted(path: string): void {
    this.#update((l) => {
      const gone = l.subs.find((s) => s.path === path);
      if (!gone) return l;
      return {
        subs: l.subs.filter((s) => s !== gone),
        marked: l.marked,
        all: l.all.filter((s) => s.id !== gone.id),
      };
    });
  }

  #update(change: (l: StoreListing) => StoreListing): void {
    const held = this.#held;
    if (!held) return;
    const next = held.then(change);
    this.#held = next;
    next.catch(() => {
      if (this.#held === next) this.#held = undefined;
    });
  }
}

function byPath(a: SubvolumeInfo, b: SubvolumeInfo): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}
