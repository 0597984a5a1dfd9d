/**
 * The `NAME.ls` line of one directory entry, byte for byte what
 * `TZ=UTC LC_ALL=C find -printf '%M %n %4U %4G %TY-%Tm-%Td %TT %P\n'` prints
 * (GNU findutils 4.9). The name is written raw: a newline in it ends the line
 * there, exactly as find does when its output is not a terminal.
 */
import { constants } from 'node:fs';

/** The lstat facts the line is made of (a `fs.BigIntStats` has them all). */
export interface LsFacts {
  mode: bigint | number;
  nlink: bigint | number;
  uid: bigint | number;
  gid: bigint | number;
  /** Modification time in nanoseconds since the epoch (negative before 1970). */
  mtimeNs: bigint;
}

const TYPE_LETTERS: ReadonlyMap<number, string> = new Map([
  [constants.S_IFREG, '-'],
  [constants.S_IFDIR, 'd'],
  [constants.S_IFLNK, 'l'],
  [constants.S_IFIFO, 'p'],
  [constants.S_IFSOCK, 's'],
  [constants.S_IFCHR, 'c'],
  [constants.S_IFBLK, 'b'],
]);

/**
 * The 10-character symbolic mode `ls -l` and find's `%M` show: type letter
 * (`- d l p s c b`, `?` for anything else), then rwx triplets with setuid,
 * setgid and sticky as `s`/`S`, `s`/`S`, `t`/`T`.
 */
export function symbolicMode(mode: number): string {
  const type = TYPE_LETTERS.get(mode & constants.S_IFMT) ?? '?';
  const bit = (mask: number, letter: string) => (mode & mask ? letter : '-');
  const exec = (xMask: number, specialMask: number, set: string, unset: string) => {
    const x = (mode & xMask) !== 0;
    if (mode & specialMask) return x ? set : unset;
    return x ? 'x' : '-';
  };
  return (
    type +
    bit(0o400, 'r') +
    bit(0o200, 'w') +
    exec(0o100, 0o4000, 's', 'S') +
    bit(0o040, 'r') +
    bit(0o020, 'w') +
    exec(0o010, 0o2000, 's', 'S') +
    bit(0o004, 'r') +
    bit(0o002, 'w') +
    exec(0o001, 0o1000, 't', 'T')
  );
}

const NS_PER_S = 1_000_000_000n;
const S_PER_DAY = 86_400n;

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
function civilFromDays(days: bigint): { year: bigint; month: number; day: number } {
  const z = days + 719_468n;
  const era = (z >= 0n ? z : z - 146_096n) / 146_097n;
  const doe = z - era * 146_097n;
  const yoe = (doe - doe / 1_460n + doe / 36_524n - doe / 146_096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const day = Number(doy - (153n * mp + 2n) / 5n + 1n);
  const month = Number(mp < 10n ? mp + 3n : mp - 9n);
  const year = yoe + era * 400n + (month <= 2 ? 1n : 0n);
  return { year, month, day };
}

/**
 * find's `%TY-%Tm-%Td %TT` in UTC: `YYYY-MM-DD HH:MM:SS.nnnnnnnnn0` (nanoseconds
 * then a literal `0`). Like glibc's `%Y` the year is not zero-padded (year 99
 * prints `99`). Negative times are floored to the second before, as `struct
 * timespec` holds them.
 */
export function findTime(mtimeNs: bigint): string {
  let seconds = mtimeNs / NS_PER_S;
  let nanos = mtimeNs % NS_PER_S;
  if (nanos < 0n) {
    nanos += NS_PER_S;
    seconds -= 1n;
  }
  let days = seconds / S_PER_DAY;
  let secOfDay = seconds % S_PER_DAY;
  if (secOfDay < 0n) {
    secOfDay += S_PER_DAY;
    days -= 1n;
  }
  const { year, month, day } = civilFromDays(days);
  const sod = Number(secOfDay);
  const hh = Math.floor(sod / 3600);
  const mm = Math.floor((sod % 3600) / 60);
  const ss = sod % 60;
  const frac = nanos.toString().padStart(9, '0');
  return `${year}-${pad2(month)}-${pad2(day)} ${pad2(hh)}:${pad2(mm)}:${pad2(ss)}.${frac}0`;
}

/**
 * The bytes find prints for one entry, trailing newline included. `relPath` is
 * the path below the walked directory (find's `%P`), as raw bytes.
 */
export function formatLsLine(facts: LsFacts, relPath: Buffer): Buffer {
  const head =
    `${symbolicMode(Number(facts.mode))} ${facts.nlink} ` +
    `${String(facts.uid).padStart(4)} ${String(facts.gid).padStart(4)} ` +
    `${findTime(facts.mtimeNs)} `;
  const headLen = Buffer.byteLength(head, 'latin1');
  const out = Buffer.allocUnsafe(headLen + relPath.length + 1);
  out.write(head, 0, 'latin1');
  relPath.copy(out, headLen);
  out[out.length - 1] = 0x0a;
  return out;
}
