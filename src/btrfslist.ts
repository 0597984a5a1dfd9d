/**
 * `btrfslist <dir>`: what btrfs knows about a filesystem and each of its
 * subvolumes, like `btrfs subvolume list` with more detail. The data is
 * gathered by {@link btrfsList} (three listing processes, one `qgroup show`,
 * `filesystem show`/`usage`) and printed by {@link formatBtrfsList} or as JSON.
 */
import { stat } from 'node:fs/promises';
import { UsageError } from './errors.js';
import { filesystemShow, filesystemUsage } from './btrfs/filesystem.js';
import type { FilesystemInfo, FilesystemUsage } from './btrfs/filesystem.js';
import { requireBtrfs } from './btrfs/mountinfo.js';
import { qgroupSizes } from './btrfs/qgroup.js';
import { listSubvolumes } from './btrfs/subvolume-list.js';
import { formatBytes } from './format.js';

/** One subvolume in a {@link BtrfsListing}. */
export interface ListedSubvolume {
  id: number;
  /** Path relative to the listed directory. */
  path: string;
  uuid: string | null;
  parentUuid: string | null;
  receivedUuid: string | null;
  /** Last generation that changed the root item. */
  generation: number;
  /** Generation at creation. */
  createdGeneration: number;
  /** ISO 8601 creation time, when btrfs knows it (snapshots). */
  created: string | null;
  readOnly: boolean;
  /** Referenced bytes (qgroups), null when quotas are off. */
  totalSize: number | null;
  /** Exclusive bytes (qgroups), null when quotas are off. */
  exclusiveSize: number | null;
}

/** Everything `btrfslist` prints. */
export interface BtrfsListing {
  dir: string;
  filesystem: FilesystemInfo | null;
  usage: FilesystemUsage | null;
  quotasEnabled: boolean;
  subvolumes: ListedSubvolume[];
}

/** Gathers the listing of the filesystem holding `dir` (subvolumes below `dir`). Needs root. */
export async function btrfsList(
  dir: string,
  opts: { signal?: AbortSignal } = {},
): Promise<BtrfsListing> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`${dir}: no such directory`);
  await requireBtrfs(dir);
  const sig = opts.signal ? { signal: opts.signal } : {};
  const [subs, sizes, shown, usage] = await Promise.all([
    listSubvolumes(dir, sig),
    qgroupSizes(dir, { sync: true, ...sig }),
    filesystemShow(dir, sig).catch(() => null),
    filesystemUsage(dir, sig).catch(() => null),
  ]);
  return {
    dir,
    filesystem: shown,
    usage,
    quotasEnabled: sizes.size > 0,
    subvolumes: subs.map((s) => {
      const q = sizes.get(s.id);
      return {
        id: s.id,
        path: s.path,
        uuid: s.uuid ?? null,
        parentUuid: s.parentUuid ?? null,
        receivedUuid: s.receivedUuid ?? null,
        generation: s.generation,
        createdGeneration: s.otransid,
        created: s.otime?.toISOString() ?? null,
        readOnly: s.readOnly,
        totalSize: q?.total ?? null,
        exclusiveSize: q?.exclusive ?? null,
      };
    }),
  };
}

/** Human-readable text of a listing: filesystem lines, then one block per subvolume. */
export function formatBtrfsList(l: BtrfsListing): string {
  const out: string[] = [];
  const fs = l.filesystem;
  if (fs) {
    out.push(
      `Filesystem ${fs.uuid}  label: ${fs.label ?? '(none)'}  used: ${formatBytes(fs.bytesUsed)}`,
    );
    for (const d of fs.devices) {
      out.push(
        `  device ${d.devid}: ${d.path}  size ${formatBytes(d.size)}  allocated ${formatBytes(d.used)}`,
      );
    }
  }
  if (l.usage) {
    out.push(
      `  size ${formatBytes(l.usage.deviceSize)}  used ${formatBytes(l.usage.used)}  free (estimated) ${formatBytes(l.usage.free)}`,
    );
  }
  out.push(
    `Quotas: ${l.quotasEnabled ? 'enabled' : 'disabled (no sizes per subvolume; enable with btrfs quota enable)'}`,
  );
  out.push('');
  for (const s of l.subvolumes) {
    const size =
      s.totalSize !== null
        ? `  size ${formatBytes(s.totalSize)} (${formatBytes(s.exclusiveSize ?? 0)} exclusive)`
        : '';
    out.push(`${s.path}  [id ${s.id}${s.readOnly ? ', read-only' : ''}]${size}`);
    out.push(
      `  uuid ${s.uuid ?? '-'}  parent ${s.parentUuid ?? '-'}  received ${s.receivedUuid ?? '-'}`,
    );
    out.push(
      `  generation ${s.generation} (created at ${s.createdGeneration})${s.created ? `  created ${s.created}` : ''}`,
    );
  }
  out.push(`${l.subvolumes.length} subvolume(s)`);
  return out.join('\n') + '\n';
}
