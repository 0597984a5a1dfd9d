/**
 * Filesystem-level commands: sync, and the basics of `filesystem show` and
 * `filesystem usage` (label, UUID, devices, sizes) for `btrfslist`.
 */
import { ButtersinkError } from '../errors.js';
import { runBtrfs } from './exec.js';

/** One device of a btrfs filesystem. */
export interface BtrfsDevice {
  readonly devid: number;
  /** Device size in bytes. */
  readonly size: number;
  /** Bytes allocated on the device. */
  readonly used: number;
  /** Device path, e.g. `/dev/loop0`; `<missing disk>` when missing. */
  readonly path: string;
}

/** What `btrfs filesystem show` tells about one filesystem. */
export interface FilesystemInfo {
  /** Label; undefined when none. */
  readonly label: string | undefined;
  /** Filesystem UUID. */
  readonly uuid: string;
  /** Bytes used as counted by the filesystem. */
  readonly bytesUsed: number;
  readonly devices: readonly BtrfsDevice[];
}

/** Parses `btrfs filesystem show --raw` output (one or more filesystems). */
export function parseFilesystemShow(text: string): FilesystemInfo[] {
  const out: {
    label: string | undefined;
    uuid: string;
    bytesUsed: number;
    devices: BtrfsDevice[];
  }[] = [];
  for (const line of text.split('\n')) {
    const head = /^Label: (?:'(.*)'|none)\s+uuid: ([0-9a-f-]+)/.exec(line);
    if (head?.[2] !== undefined) {
      out.push({ label: head[1], uuid: head[2], bytesUsed: 0, devices: [] });
      continue;
    }
    const fs = out.at(-1);
    if (!fs) continue;
    const used = /FS bytes used (\d+)/.exec(line);
    if (used) fs.bytesUsed = Number(used[1]);
    const dev = /^\s*devid\s+(\d+) size (\d+) used (\d+) path (.*)$/.exec(line);
    if (dev?.[4] !== undefined) {
      fs.devices.push({
        devid: Number(dev[1]),
        size: Number(dev[2]),
        used: Number(dev[3]),
        path: dev[4],
      });
    }
  }
  return out;
}

/** Shows the filesystem holding `path` (`btrfs filesystem show --raw PATH`). */
export async function filesystemShow(
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FilesystemInfo> {
  const { stdout } = await runBtrfs(['filesystem', 'show', '--raw', path], opts);
  const [first] = parseFilesystemShow(stdout);
  if (!first) throw new ButtersinkError(`cannot parse btrfs filesystem show output for ${path}`);
  return first;
}

/** Overall space of a filesystem from `btrfs filesystem usage -b`. Fields are bytes. */
export interface FilesystemUsage {
  readonly deviceSize: number;
  readonly deviceAllocated: number;
  readonly deviceUnallocated: number;
  readonly used: number;
  /** Estimated free space. */
  readonly free: number;
  readonly dataRatio: number;
  readonly metadataRatio: number;
}

/** Parses the "Overall:" section of `btrfs filesystem usage -b`. Missing fields are 0. */
export function parseFilesystemUsage(text: string): FilesystemUsage {
  const num = (label: string) => {
    const m = new RegExp(`^\\s*${label}:\\s+([\\d.]+)`, 'm').exec(text);
    return m?.[1] === undefined ? 0 : Number(m[1]);
  };
  return {
    deviceSize: num('Device size'),
    deviceAllocated: num('Device allocated'),
    deviceUnallocated: num('Device unallocated'),
    used: num('Used'),
    free: num('Free \\(estimated\\)'),
    dataRatio: num('Data ratio'),
    metadataRatio: num('Metadata ratio'),
  };
}

/** Space usage of the filesystem holding `path`. Requires root for exact figures. */
export async function filesystemUsage(
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FilesystemUsage> {
  const { stdout } = await runBtrfs(['filesystem', 'usage', '-b', path], opts);
  return parseFilesystemUsage(stdout);
}

/** Forces a transaction commit of the filesystem holding `path` (`btrfs filesystem sync`). */
export async function syncFilesystem(
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  await runBtrfs(['filesystem', 'sync', path], opts);
}
