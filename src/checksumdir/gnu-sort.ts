/**
 * An exact emulation of `LC_ALL=C sort -k N` (GNU coreutils) over lines held as
 * byte buffers: the key runs from the start of field N to the end of the line,
 * fields begin at each blank-to-nonblank transition and a field's leading blanks
 * belong to it (no `-b`), keys compare as bytes, and equal keys fall back to the
 * last-resort comparison of the whole lines (no `-s`, no `-u`).
 */

const SPACE = 0x20;
const TAB = 0x09;
const NEWLINE = 0x0a;

function isBlank(byte: number): boolean {
  return byte === SPACE || byte === TAB;
}

/**
 * Byte offset in `line` (without its newline) where GNU sort's key `-k field`
 * starts in the C locale. Equals `line.length` (an empty key) when the line has
 * fewer fields. `field` is 1-based, like sort's option.
 */
export function keyStart(line: Uint8Array, field: number): number {
  if (!Number.isInteger(field) || field < 1) throw new RangeError(`bad sort field ${field}`);
  let pos = 0;
  const end = line.length;
  for (let skip = field - 1; pos < end && skip > 0; skip--) {
    while (pos < end && isBlank(line[pos]!)) pos++;
    while (pos < end && !isBlank(line[pos]!)) pos++;
  }
  return pos;
}

/** A line ready for sorting: its bytes and where its key begins. */
interface Keyed {
  line: Buffer;
  key: number;
}

function compareKeyed(a: Keyed, b: Keyed): number {
  const diff = a.line.compare(b.line, b.key, b.line.length, a.key, a.line.length);
  return diff !== 0 ? diff : a.line.compare(b.line);
}

/**
 * Sorts `lines` (each without its trailing newline) exactly as
 * `LC_ALL=C sort -k field` orders them. Returns a new array; the input is left
 * as is. Deterministic: the result does not depend on the input order.
 */
export function sortLikeGnuSort(lines: readonly Buffer[], field: number): Buffer[] {
  const keyed: Keyed[] = lines.map((line) => ({ line, key: keyStart(line, field) }));
  keyed.sort(compareKeyed);
  return keyed.map((k) => k.line);
}

/**
 * Splits `text` into lines the way sort reads its input: on every newline, a
 * missing final newline still ending the last line. The pieces share memory
 * with `text`.
 */
export function splitLines(text: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < text.length) {
    let nl = text.indexOf(NEWLINE, start);
    if (nl < 0) nl = text.length;
    lines.push(text.subarray(start, nl));
    start = nl + 1;
  }
  return lines;
}

/** Joins lines with a newline after each, as sort writes them. */
export function joinLines(lines: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  const nl = Buffer.from([NEWLINE]);
  for (const line of lines) parts.push(line, nl);
  return Buffer.concat(parts);
}
