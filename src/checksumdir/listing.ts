/**
 * The two listings checksumdir records, built from walked (and hashed) entries:
 * `NAME.ls` as `find … -printf … | LC_ALL=C sort -k 7` gives it and `NAME.files`
 * as `find -type f -exec sha256sum {} \; | LC_ALL=C sort -k 2` gives it.
 */
import { joinLines, sortLikeGnuSort, splitLines } from './gnu-sort.js';
import { formatLsLine } from './ls-line.js';
import type { LsFacts } from './ls-line.js';
import { formatSha256sumLine } from './sha256sum-line.js';

/** The finished listings, sorted, each line ending in a newline. */
export interface Listing {
  /** Contents of `NAME.ls`. */
  ls: Buffer;
  /** Contents of `NAME.files`. */
  files: Buffer;
}

/** An entry as the builder needs it. */
export interface ListingEntry {
  /** Path below the listed directory (find's `%P`). */
  relPath: Buffer;
  stats: LsFacts;
  /** Left out of `NAME.ls` (a mount point); its contents are added on their own. */
  mountPoint: boolean;
}

const DOT_SLASH = Buffer.from('./');

/**
 * Collects lines in any order and sorts them once in {@link build}. Memory:
 * one line per entry and per regular file, as `sort` itself needs.
 */
export class ListingBuilder {
  private readonly lsLines: Buffer[] = [];
  private readonly fileLines: Buffer[] = [];

  /** Adds an entry's `NAME.ls` line (unless it is a mount point). */
  addEntry(entry: ListingEntry): void {
    if (entry.mountPoint) return;
    // A newline in a name splits find's output line; sort then sorts the pieces apart.
    for (const line of splitLines(formatLsLine(entry.stats, entry.relPath)))
      this.lsLines.push(line);
  }

  /** Adds a regular file's `NAME.files` line. */
  addFile(relPath: Buffer, sha256: string): void {
    const line = formatSha256sumLine(sha256, Buffer.concat([DOT_SLASH, relPath]));
    this.fileLines.push(line.subarray(0, line.length - 1));
  }

  /** Sorts and joins both listings. May be called more than once. */
  build(): Listing {
    return {
      ls: joinLines(sortLikeGnuSort(this.lsLines, 7)),
      files: joinLines(sortLikeGnuSort(this.fileLines, 2)),
    };
  }
}
