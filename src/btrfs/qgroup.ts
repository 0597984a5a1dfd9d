/**
 * Per-subvolume sizes from btrfs quota groups (`btrfs qgroup show --raw`),
 * and switching quotas on and off. When quotas are disabled the sizes are
 * simply unknown: listing returns an empty map, it never fails for that reason.
 */
import { runBtrfs } from './exec.js';
import { CommandError } from '../errors.js';

/** Referenced (total) and exclusive bytes of one level-0 qgroup (one subvolume). */
export interface QgroupSize {
  /** Bytes referenced by the subvolume (shared and exclusive). */
  readonly total: number;
  /** Bytes only this subvolume references. */
  readonly exclusive: number;
}

/**
 * Parses `btrfs qgroup show --raw` text output: level-0 qgroups (`0/<id>`) only,
 * keyed by subvolume id. Header and higher-level qgroups are skipped.
 */
export function parseQgroupShow(text: string): Map<number, QgroupSize> {
  const out = new Map<number, QgroupSize>();
  for (const line of text.split('\n')) {
    const m = /^0\/(\d+)\s+(\d+)\s+(\d+)(?:\s|$)/.exec(line);
    if (!m) continue;
    out.set(Number(m[1]), { total: Number(m[2]), exclusive: Number(m[3]) });
  }
  return out;
}

/** Options of {@link qgroupSizes}. */
export interface QgroupSizesOptions {
  /** Sync the filesystem first so recent writes are counted (`--sync`). Default true. */
  sync?: boolean;
  signal?: AbortSignal;
}

/**
 * Sizes of every subvolume of the filesystem holding `path`, keyed by
 * subvolume id. Resolves to an empty map when quotas are not enabled. One process.
 * Sizes may be inexact while a quota rescan runs (btrfs prints a warning then).
 */
export async function qgroupSizes(
  path: string,
  opts: QgroupSizesOptions = {},
): Promise<Map<number, QgroupSize>> {
  try {
    const { stdout } = await runBtrfs(
      ['qgroup', 'show', '--raw', ...((opts.sync ?? true) ? ['--sync'] : []), path],
      opts.signal ? { signal: opts.signal } : {},
    );
    return parseQgroupShow(stdout);
  } catch (err) {
    if (err instanceof CommandError && /quotas not enabled/i.test(err.stderr)) return new Map();
    throw err;
  }
}

/**
 * Enables quotas on the filesystem holding `path` and waits for the initial
 * rescan (`btrfs quota enable` then `btrfs quota rescan -w`). Idempotent.
 */
export async function enableQuota(
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  const o = opts.signal ? { signal: opts.signal } : {};
  await runBtrfs(['quota', 'enable', path], o);
  try {
    await runBtrfs(['quota', 'rescan', '-w', path], o);
  } catch (err) {
    // enable starts a rescan itself; a second one may be refused while it runs.
    if (!(err instanceof CommandError && /in progress|already/i.test(err.stderr))) throw err;
    await runBtrfs(['quota', 'rescan', '-W', path], o);
  }
}

/** Disables quotas on the filesystem holding `path` (`btrfs quota disable`). Idempotent. */
export async function disableQuota(
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  await runBtrfs(['quota', 'disable', path], opts.signal ? { signal: opts.signal } : {});
}
