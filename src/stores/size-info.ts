/**
 * `.bs` size-info files (formats.md): text lines `toUUID<TAB>fromUUID<TAB>size<LF>`
 * recording measured diff sizes, `fromUUID` being `None` for a full send. Kept
 * beside local snapshots (`<snapshot>.bs`) and in buckets (`<prefix>/<path>.bs`).
 */
import { isUuid } from '../btrfs/send-stream/values.js';

/** One measured diff size. */
export interface SizeInfo {
  readonly to: string;
  readonly from: string | null;
  readonly size: number;
}

/** Parses a `.bs` file; malformed lines are skipped (returned in `bad`), later lines win. */
export function parseSizeInfo(text: string): { entries: SizeInfo[]; bad: string[] } {
  const byKey = new Map<string, SizeInfo>();
  const bad: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [to, from, size, ...rest] = line.trim().split('\t');
    const n = Number(size);
    if (
      rest.length > 0 ||
      to === undefined ||
      from === undefined ||
      !isUuid(to) ||
      (from !== 'None' && !isUuid(from)) ||
      !Number.isSafeInteger(n) ||
      n < 0
    ) {
      bad.push(line);
      continue;
    }
    const entry = {
      to: to.toLowerCase(),
      from: from === 'None' ? null : from.toLowerCase(),
      size: n,
    };
    byKey.set(`${entry.to}_${entry.from}`, entry);
  }
  return { entries: [...byKey.values()], bad };
}

/** Formats one `.bs` line (with its newline). */
export function formatSizeInfo(info: SizeInfo): string {
  return `${info.to}\t${info.from ?? 'None'}\t${info.size}\n`;
}
