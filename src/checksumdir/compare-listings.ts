/**
 * Compares two checksumdir recordings of a tree (earlier `NAME.ls`/`NAME.files`
 * against the current ones) path by path. Pure: no I/O.
 */
import { splitLines } from './gnu-sort.js';
import type { Listing } from './listing.js';
import { parseSha256sumLine } from './sha256sum-line.js';

/** Paths (relative to the directory) that differ, each list in byte order. */
export interface ListingDifferences {
  /** Regular files whose content differs, or that stopped or started being regular files. */
  content: string[];
  /** Entries whose type, mode, link count, owner, group or mtime differ. */
  metadata: string[];
  /** Entries present now and not before. */
  added: string[];
  /** Entries present before and not now. */
  removed: string[];
}

// %M %n %4U %4G date time, then one space and the path.
const LS_HEAD = /^\S{10} \d+ +\d+ +\d+ -?\d+-\d\d-\d\d \d\d:\d\d:\d\d\.\d{10} /;
const FRAGMENT = '\n';

/**
 * Groups `NAME.ls` lines by path (latin1 key of the path bytes). A line that
 * is not a listing line is the rest of a name that held a newline (sort put it
 * elsewhere); it is keyed by its own text, prefixed by a newline.
 */
function lsByPath(ls: Buffer): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of splitLines(ls)) {
    const text = line.toString('latin1');
    const head = LS_HEAD.exec(text);
    const key = head ? text.slice(head[0].length) : FRAGMENT + text;
    const lines = map.get(key);
    if (lines) lines.push(text);
    else map.set(key, [text]);
  }
  return map;
}

function filesByPath(files: Buffer): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of splitLines(files)) {
    const parsed = parseSha256sumLine(line);
    if (!parsed) {
      map.set(FRAGMENT + line.toString('latin1'), '');
      continue;
    }
    const name = parsed.name.toString('latin1');
    map.set(name.startsWith('./') ? name.slice(2) : name, parsed.hex);
  }
  return map;
}

function display(key: string): string {
  const fragment = key.startsWith(FRAGMENT);
  const text = Buffer.from(fragment ? key.slice(1) : key, 'latin1').toString();
  return fragment ? `(line of a name with a newline) ${text}` : text;
}

function sortedDisplay(keys: Iterable<string>): string[] {
  return [...keys]
    .map((k) => Buffer.from(k, 'latin1'))
    .sort(Buffer.compare)
    .map((b) => display(b.toString('latin1')));
}

/**
 * Lists what changed from `before` to `after`. A path is in `added` or
 * `removed` when its `NAME.ls` line appears or disappears; in `metadata` when
 * its line changed; in `content` when its `NAME.files` digest changed or it
 * appeared or disappeared there while staying listed. A file can be in both
 * `content` and `metadata` (new data usually means a new mtime).
 */
export function compareListings(before: Listing, after: Listing): ListingDifferences {
  const lsBefore = lsByPath(before.ls);
  const lsAfter = lsByPath(after.ls);
  const added = new Set<string>();
  const removed = new Set<string>();
  const metadata = new Set<string>();
  const content = new Set<string>();
  for (const [key, lines] of lsAfter) {
    const old = lsBefore.get(key);
    if (!old) added.add(key);
    else if (old.join('\n') !== lines.join('\n')) metadata.add(key);
  }
  for (const key of lsBefore.keys()) if (!lsAfter.has(key)) removed.add(key);
  const filesBefore = filesByPath(before.files);
  const filesAfter = filesByPath(after.files);
  for (const key of new Set([...filesBefore.keys(), ...filesAfter.keys()])) {
    if (added.has(key) || removed.has(key)) continue;
    if (filesBefore.get(key) !== filesAfter.get(key)) content.add(key);
  }
  return {
    content: sortedDisplay(content),
    metadata: sortedDisplay(metadata),
    added: sortedDisplay(added),
    removed: sortedDisplay(removed),
  };
}

/** True when nothing differs. */
export function noDifferences(d: ListingDifferences): boolean {
  return d.content.length + d.metadata.length + d.added.length + d.removed.length === 0;
}

/** One line per difference for a report: `content  path`, `metadata path`, `added    path`, `removed  path`. */
export function describeDifferences(d: ListingDifferences): string[] {
  const tag = (label: string, paths: string[]) => paths.map((p) => `${label.padEnd(9)}${p}`);
  return [
    ...tag('added', d.added),
    ...tag('removed', d.removed),
    ...tag('content', d.content),
    ...tag('metadata', d.metadata),
  ];
}
