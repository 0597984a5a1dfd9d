/**
 * Facts about one subvolume from `btrfs subvolume show` (one process).
 */
import { runBtrfs } from './exec.js';

/** What `btrfs subvolume show` reports about one subvolume. */
export interface SubvolumeDetails {
  /** Path as printed on the first line (from the filesystem's top level). */
  readonly fsPath: string;
  /** Last path component. */
  readonly name: string;
  readonly id: number;
  readonly uuid: string | undefined;
  /** UUID of the snapshot source; undefined when none. */
  readonly parentUuid: string | undefined;
  /** UUID set by `btrfs receive`; undefined when not received. */
  readonly receivedUuid: string | undefined;
  /** Creation time. */
  readonly otime: Date | undefined;
  /** Root item generation. */
  readonly generation: number;
  /** Generation at creation (otransid). */
  readonly otransid: number;
  /** Id of the subvolume containing this one. */
  readonly topLevel: number;
  /** True when the `readonly` flag is set. */
  readonly readOnly: boolean;
  /** Sender's ctransid for a received subvolume, else 0. */
  readonly stransid: number;
  /** Receive transaction, else 0. */
  readonly rtransid: number;
  /** Paths (from the top level) of snapshots taken of this subvolume. */
  readonly snapshots: readonly string[];
}

/** Parses `YYYY-MM-DD HH:MM:SS +hhmm` (as `subvolume show` prints) to a Date. */
export function parseShowTime(text: string | undefined): Date | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})$/.exec(text?.trim() ?? '');
  if (!m) return undefined;
  const d = new Date(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * Parses the output of `btrfs subvolume show` (btrfs-progs 6.x). UUIDs printed
 * as `-` become undefined; unknown fields are ignored.
 */
export function parseSubvolumeShow(text: string): SubvolumeDetails {
  const lines = text.split('\n');
  const fields = new Map<string, string>();
  const snapshots: string[] = [];
  let inSnapshots = false;
  for (const line of lines.slice(1)) {
    const kv = /^\t([^\t:][^:]*):\s*(.*)$/.exec(line);
    if (kv?.[1] !== undefined && kv[2] !== undefined) {
      inSnapshots = kv[1] === 'Snapshot(s)';
      fields.set(kv[1], kv[2].trim());
      if (inSnapshots && kv[2].trim() !== '') snapshots.push(kv[2].trim());
      continue;
    }
    if (inSnapshots && /^\t\t/.test(line) && line.trim() !== '') snapshots.push(line.trim());
  }
  const uuid = (k: string) => {
    const v = fields.get(k);
    return v === undefined || v === '-' || v === '' ? undefined : v;
  };
  const num = (k: string) => Number(fields.get(k) ?? 0) || 0;
  const fsPath = (lines[0] ?? '').replace(/\/+$/, '');
  return {
    fsPath,
    name: fields.get('Name') ?? fsPath.split('/').at(-1) ?? '',
    id: num('Subvolume ID'),
    uuid: uuid('UUID'),
    parentUuid: uuid('Parent UUID'),
    receivedUuid: uuid('Received UUID'),
    otime: parseShowTime(fields.get('Creation time')),
    generation: num('Generation'),
    otransid: num('Gen at creation'),
    topLevel: num('Top level ID'),
    readOnly: /\breadonly\b/.test(fields.get('Flags') ?? ''),
    stransid: num('Send transid'),
    rtransid: num('Receive transid'),
    snapshots,
  };
}

/**
 * Shows one subvolume (`btrfs subvolume show PATH`). Rejects with
 * NotBtrfsError when `path` is not a subvolume on btrfs. Requires root.
 */
export async function subvolumeShow(
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<SubvolumeDetails> {
  const { stdout } = await runBtrfs(['subvolume', 'show', path], opts);
  return parseSubvolumeShow(stdout);
}
