/**
 * The local btrfs store: a directory whose read-only subvolumes (at any depth)
 * are the snapshots. It can generate any diff between two of them.
 *
 * Layout and commit: a snapshot received for `<dir>/<path>` is first received
 * under the name `<path>.part` in the same directory (the stream's subvolume
 * name is rewritten), and renamed to `<path>` only after `btrfs receive`
 * exited 0, the whole stream verified and the received UUID checked. (A
 * read-only subvolume can be renamed within its directory, not moved to
 * another one.) Whatever a failed or killed run leaves is therefore always
 * named `*.part`: never listed as a snapshot, removed by `deletePartials`.
 * Measured diff sizes are appended to `<snapshot>.bs` beside the snapshot.
 *
 * Fused receive (this machine's own `btrfs send` piped straight into `btrfs
 * receive`, see `fused-transfer.ts`): nothing rewrites the stream's name, so
 * the snapshot is received in place, under a marker `.<name>.receiving` (see
 * `receiving-marker.ts`) written before and removed only after the same
 * checks. A marked subvolume is a partial exactly like a `*.part`.
 *
 * Lock: `lock()` takes `<dir>/.buttersink.lock` (see `lock.ts`); `sync` holds
 * it while it changes this store. Partials are only deleted under the lock
 * (this store's own, or taken just for the deletion), so a run never deletes
 * the `*.part` another run is receiving. A source is not locked: the only
 * thing a source run writes, a `.bs` line, is one `O_APPEND` write of under
 * 200 bytes (whole lines even when runs measure at once; duplicates are harmless).
 */
import {
  lstat,
  mkdir,
  readdir,
  realpath,
  rename,
  rmdir,
  stat,
  statfs,
  unlink,
} from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import {
  LocationError,
  NotBtrfsError,
  StoreError,
  UnsafePathError,
  describeError,
} from '../../errors.js';
import type { BtrfsChild } from '../../btrfs/exec.js';
import { isSubvolume, requireBtrfs } from '../../btrfs/mountinfo.js';
import { qgroupSizes } from '../../btrfs/qgroup.js';
import { localStreamSupportWith } from '../../btrfs/send-capabilities.js';
import type { StreamSupport } from '../../btrfs/send-capabilities.js';
import { listFilesystem } from '../../btrfs/subvolume-list.js';
import type { SubvolumeInfo } from '../../btrfs/subvolume-list.js';
import { subvolumeShow } from '../../btrfs/subvolume-show.js';
import type { SubvolumeDetails } from '../../btrfs/subvolume-show.js';
import { deleteSubvolume, getReadOnly } from '../../btrfs/subvolume.js';
import { debug, warn } from '../../log.js';
import { formatBytes } from '../../format.js';
import type { DiffOffer, StoreView } from '../../planner/plan-input.js';
import type { Volume } from '../../planner/volume.js';
import { btrfsReceive, receiveFailure, spawnBtrfsReceive } from '../../stages/btrfs-receive.js';
import { btrfsSend, spawnBtrfsSend } from '../../stages/btrfs-send.js';
import { cloneToWrite } from '../../stages/clone-to-write.js';
import { receiveGuard } from '../../stages/receive-guard.js';
import { countBytes, noDataSizeProbe } from '../../stages/size-probe.js';
import { streamVersionGate } from '../../stages/stream-version-gate.js';
import { uuidRewrite } from '../../stages/uuid-rewrite.js';
import { commitSink } from '../../streams/commit-sink.js';
import { runPipeline } from '../../streams/pipeline.js';
import type { SourceStage, TransformStage } from '../../streams/stage.js';
import { acquireFileLock, forgettingLock, joinFileLock } from '../lock.js';
import type { LockOptions, StoreLock } from '../lock.js';
import { NoFollowError, appendNoFollow, readNoFollow } from '../no-follow.js';
import { formatSizeInfo, parseSizeInfo } from '../size-info.js';
import { ListingCache } from './listing-cache.js';
import type { StoreListing } from './listing-cache.js';
import {
  markedName,
  markedPaths,
  markerPath,
  removeMarker,
  writeMarker,
} from './receiving-marker.js';
import type {
  MeasureOptions,
  Partial,
  PreflightOptions,
  PreflightProblem,
  PreflightTransfer,
  ReceiveOptions,
  ReceiveStages,
  SendOptions,
  Store,
  StoreOpOptions,
  StoreRole,
} from '../store.js';
import type { BtrfsLocation } from '../uri.js';

/** Room {@link BtrfsStore.preflight} asks for beyond a plan's size: this fraction of it… */
export const SPACE_MARGIN_FRACTION = 0.1;
/** …plus this (metadata, the global reserve, the `.bs` files). */
export const SPACE_MARGIN_BYTES = 64 * 1024 * 1024;

/** Suffix of a snapshot being received (or left by a failed receive). */
export const PARTIAL_SUFFIX = '.part';

/** Options of {@link BtrfsStore}. */
export interface BtrfsStoreOptions {
  /** Send stream protocol version for sends from this store (`--proto`). Default: btrfs-progs' default. */
  proto?: 1 | 2;
  /** Append measured sizes to `<snapshot>.bs` (default true; false for read-only use). */
  recordSizes?: boolean;
  /**
   * False: this store neither sends compressed data nor takes protocol 2
   * streams (a server's `--no-compressed-data`). Default true: what this
   * machine's btrfs-progs and kernel can.
   */
  compressedData?: boolean;
  /**
   * Keep the listing while this store holds its lock (see `listing-cache.ts`):
   * one listing per run instead of one per receive. Only for a store that is
   * the one writer under its lock (a run's own store); not for a server's
   * session, whose lock other sessions of the run write under. Default false.
   */
  cacheListing?: boolean;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** True when a store-relative path is, or lies inside, a partial transfer (`*.part`). */
export function isPartialPath(path: string): boolean {
  return path.split('/').some((part) => part.endsWith(PARTIAL_SUFFIX));
}

/** A directory of read-only btrfs snapshots on this machine. */
export class BtrfsStore implements Store {
  readonly kind = 'btrfs' as const;
  readonly location: BtrfsLocation;
  readonly #opts: BtrfsStoreOptions;
  /** The lock this store holds, if any. */
  #lock: StoreLock | undefined;
  /** The listing kept while the lock is held (with `cacheListing`). */
  readonly #listings = new ListingCache();

  constructor(location: BtrfsLocation, opts: BtrfsStoreOptions = {}) {
    this.location = location;
    this.#opts = opts;
  }

  /** Absolute path of a snapshot of this store. */
  pathOf(volume: Volume): string {
    return join(this.location.dir, volume.path);
  }

  /** Checks the directory exists and is on btrfs; one-line errors for the user. */
  async #checkDir(): Promise<void> {
    const dir = this.location.dir;
    const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new LocationError('NO_SUCH_DIRECTORY', `${dir}: no such directory`, { cause: err });
      }
      throw new StoreError(`${dir}: ${describeError(err)}`, { cause: err });
    });
    if (!st.isDirectory()) {
      throw new LocationError(
        'NOT_A_DIRECTORY',
        `${dir}: not a directory (a snapshot directory URI ends with '/', e.g. ${dir}/)`,
      );
    }
    try {
      await requireBtrfs(dir);
    } catch (err) {
      if (err instanceof NotBtrfsError)
        throw new NotBtrfsError(`${dir}: not on a btrfs filesystem`);
      throw err;
    }
  }

  async view(role: StoreRole, opts: StoreOpOptions = {}): Promise<StoreView> {
    await this.#checkDir();
    const signal = opts.signal;
    const [{ subs, marked }, sizes] = await Promise.all([
      this.#listing(signal),
      qgroupSizes(this.location.dir, { sync: false, ...(signal ? { signal } : {}) }),
    ]);
    const volumes: Volume[] = [];
    const readWrite: string[] = [];
    for (const s of subs) {
      if (isPartialPath(s.path) || marked.has(s.path)) continue;
      if (!s.readOnly) readWrite.push(s.path);
      if (!s.readOnly || s.uuid === undefined) continue;
      const q = sizes.get(s.id);
      volumes.push({
        uuid: s.receivedUuid ?? s.uuid,
        ...(s.receivedUuid !== undefined ? { ownUuid: s.uuid } : {}),
        path: s.path,
        gen: s.otransid,
        ...(s.parentUuid !== undefined ? { parentUuid: s.parentUuid } : {}),
        ...(q ? { totalSize: q.total, exclusiveSize: q.exclusive } : {}),
      });
    }
    await this.#explainListing(role, volumes.length, readWrite, signal);
    const diffs = role === 'source' ? await this.#readSizeInfo(volumes) : [];
    return { kind: 'btrfs', volumes, diffs };
  }

  /**
   * No silent no-ops: refuses a named snapshot that is a read-write subvolume,
   * and a directory URI that is itself one read-only snapshot (nothing below it
   * to list), and a source directory with no read-only snapshots (EMPTY_SOURCE,
   * exit 2, as an empty S3 source); warns once about the read-write subvolumes a
   * listing leaves out.
   */
  async #explainListing(
    role: StoreRole,
    snapshots: number,
    readWrite: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const { dir, snapshot } = this.location;
    const hint = 'make snapshots with btrfs subvolume snapshot -r';
    if (snapshot !== undefined && readWrite.includes(snapshot)) {
      const path = join(dir, snapshot);
      throw new LocationError(
        'READ_WRITE_SUBVOLUME',
        `${path}: a read-write subvolume, not a snapshot; only read-only snapshots can be sent (make one with btrfs subvolume snapshot -r ${path} NEW-PATH)`,
      );
    }
    if (snapshots === 0 && snapshot === undefined && (await isSubvolume(dir))) {
      if (await getReadOnly(dir, signal ? { signal } : {})) {
        throw new LocationError(
          'SNAPSHOT_AS_DIRECTORY',
          `${dir}/: a read-only snapshot, not a directory of snapshots; drop the trailing '/' to name this one snapshot (${dir})`,
        );
      }
    }
    const names = readWrite.slice(0, 3).join(', ') + (readWrite.length > 3 ? ', …' : '');
    // Nothing to send is a mistake to say (and -d would empty the destination), as for S3.
    if (role === 'source' && snapshots === 0 && snapshot === undefined) {
      const rw = readWrite.length > 0 ? `, only read-write subvolume(s) ${names}` : '';
      throw new LocationError(
        'EMPTY_SOURCE',
        `${dir}/: no read-only snapshots here${rw}; nothing to send (${hint}, or check the path)`,
      );
    }
    // Naming one snapshot leaves the others out on purpose.
    if (readWrite.length === 0 || snapshot !== undefined) return;
    warn(
      'READ_WRITE_IGNORED',
      `${dir}: ignoring ${readWrite.length} read-write subvolume(s) ${names} (${hint})`,
      { paths: readWrite },
    );
  }

  /**
   * The measured sizes in the snapshots' `.bs` files. Only the files there
   * are read (one `readdir` per directory says which), a few at a time.
   */
  async #readSizeInfo(volumes: readonly Volume[]): Promise<DiffOffer[]> {
    const known = new Set(volumes.map((v) => v.uuid));
    const present = await filesIn(
      this.location.dir,
      volumes.map((v) => dirname(v.path)),
    );
    const withInfo = volumes.filter((v) => present.has(`${v.path}.bs`));
    const offers: DiffOffer[][] = [];
    for (let i = 0; i < withInfo.length; i += SIZE_INFO_READS) {
      const batch = withInfo.slice(i, i + SIZE_INFO_READS);
      offers.push(...(await Promise.all(batch.map((v) => this.#sizeInfoOf(v, known)))));
    }
    return offers.flat();
  }

  /** The offers `v`'s `.bs` file holds for diffs from `known` snapshots (or full). */
  async #sizeInfoOf(v: Volume, known: ReadonlySet<string>): Promise<DiffOffer[]> {
    const file = `${this.pathOf(v)}.bs`;
    let text: string;
    try {
      text = await readNoFollow(file);
    } catch (err) {
      if (err instanceof NoFollowError) warn('SIZE_INFO_IGNORED', `${err.message}; ignored`);
      return [];
    }
    const { entries, bad } = parseSizeInfo(text);
    if (bad.length > 0) warn('BAD_SIZE_INFO', `${file}: ${bad.length} unreadable line(s) ignored`);
    return entries
      .filter((e) => e.to === v.uuid && (e.from === null || known.has(e.from)))
      .map((e) => ({
        to: e.to,
        from: e.from,
        size: e.size,
        estimated: false,
        store: 'source' as const,
        atDest: false,
      }));
  }

  async measure(to: Volume, from: Volume | null, opts: MeasureOptions = {}): Promise<number> {
    const sig = opts.signal ? { signal: opts.signal } : {};
    const sendOpts = {
      path: this.pathOf(to),
      ...(from ? { parent: this.pathOf(from) } : {}),
      ...(this.#opts.proto ? { proto: this.#opts.proto } : {}),
      ...sig,
    };
    let bytes: number;
    try {
      const probe = await runPipeline(
        [btrfsSend({ ...sendOpts, noData: true }), noDataSizeProbe(sig)] as const,
        sig,
      );
      bytes = probe.results[1].bytes;
    } catch (err) {
      opts.signal?.throwIfAborted();
      // Older btrfs-progs lack --no-data: count a whole test send instead (slow, exact).
      warn(
        'PROBE_FALLBACK',
        `fast size probe failed (${describeError(err)}); measuring ${to.path} with a full test send`,
      );
      const full = await runPipeline([btrfsSend(sendOpts), countBytes(sig)] as const, sig);
      bytes = full.results[1];
    }
    if (this.#opts.recordSizes === false || opts.record === false) return bytes;
    const line = formatSizeInfo({ to: to.uuid, from: from?.uuid ?? null, size: bytes });
    await appendNoFollow(`${this.pathOf(to)}.bs`, line).catch((err: unknown) =>
      warn(
        'SIZE_INFO_WRITE',
        `cannot record measured size in ${this.pathOf(to)}.bs: ${describeError(err)}`,
      ),
    );
    debug('measured diff', { to: to.path, from: from?.path ?? null, bytes });
    return bytes;
  }

  send(to: Volume, from: Volume | null, opts: SendOptions = {}): SourceStage<unknown> {
    return btrfsSend({
      ...this.#sendSpec(to, from, opts.compressedData),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  /**
   * What `btrfs send` sends `to` (from `from`) with: compressed extents
   * (protocol 2) when asked and these options allow, else `--proto` if given.
   */
  #sendSpec(
    to: Volume,
    from: Volume | null,
    compressedData: boolean | undefined,
  ): { path: string; parent?: string; proto?: 1 | 2; compressedData?: boolean } {
    const compressed =
      compressedData === true && this.#opts.proto !== 1 && this.#opts.compressedData !== false;
    return {
      path: this.pathOf(to),
      ...(from ? { parent: this.pathOf(from) } : {}),
      ...(compressed
        ? { proto: 2, compressedData: true }
        : this.#opts.proto
          ? { proto: this.#opts.proto }
          : {}),
    };
  }

  /** What this machine can do with protocol 2, less what the options turned off. */
  streamSupport(): Promise<StreamSupport> {
    return localStreamSupportWith(this.#opts);
  }

  /** A gate in front of `btrfs receive` when it reads protocol 1 only (see stream-version-gate.ts). */
  async #versionGate(sig: { signal?: AbortSignal }): Promise<TransformStage<unknown>[]> {
    const support = await this.streamSupport();
    if (support.receiveVersion >= 2) return [];
    return [
      streamVersionGate({
        maxVersion: support.receiveVersion,
        receiver: 'btrfs receive here',
        ...(support.receiveWhy ? { why: support.receiveWhy } : {}),
        ...sig,
      }),
    ];
  }

  /**
   * Receives under `<path>.part` and renames when committed (see the module
   * header). Every stream not from this machine's own `btrfs send` runs through
   * the receive guard; `btrfs receive` runs confined (`-C`); an incremental is
   * pinned to the exact parent copy in this store (its own UUID), and refused
   * when the filesystem would resolve it, or its clone sources, elsewhere.
   */
  async receive(
    to: Volume,
    from: Volume | null,
    opts: ReceiveOptions = {},
  ): Promise<ReceiveStages> {
    const signal = opts.signal;
    const sig = signal ? { signal } : {};
    const final = await this.#receivePath(to);
    const parentDir = dirname(final);
    const stagingName = basename(final) + PARTIAL_SUFFIX;
    const staging = join(parentDir, stagingName);
    const parent = from ? await this.#exactParent(from, sig) : undefined;
    if (!opts.trustedSource) await this.#warnKnownTarget(to, sig);
    await mkdir(parentDir, { recursive: true });
    await this.#clearMarked(final, signal);
    if (await exists(final)) {
      throw new StoreError(
        `${final} already exists and is not snapshot ${to.uuid}; move it away first`,
      );
    }
    if (await exists(staging)) {
      debug('removing earlier partial before receiving', { staging });
      await this.#locked(() => this.#removePartial(staging), signal);
    }
    signal?.throwIfAborted();
    // Until the commit, the kept listing may miss a partial this receive leaves.
    this.#listings.changing();
    const receiver = btrfsReceive({ dir: parentDir, ...sig });
    const sink = commitSink(receiver, {
      ...sig,
      name: 'btrfs-receive',
      commit: async (received) => {
        const show = await checkReceived(received.path, to, parent, sig);
        await rename(received.path, final);
        await this.#committed(to, final, show);
        return { path: final };
      },
    });
    const transforms = [
      ...(opts.trustedSource
        ? []
        : [
            receiveGuard({
              target: to.uuid,
              ...(from ? { parent: from.uuid } : {}),
              ...(parent ? { parentRoot: parent.path } : {}),
              verify: true,
              ...sig,
            }),
          ]),
      // Clone sources are looked up by received UUID only: when that is ambiguous, write the bytes.
      ...(from && parent && !parent.clonesExact
        ? [cloneToWrite({ parent: from.uuid, parentRoot: parent.path, ...sig })]
        : []),
      uuidRewrite({
        subvolumeName: stagingName,
        ...(parent ? { pinParent: parent.ownUuid } : {}),
        ...sig,
      }),
      // Last, so the parsing stages above sit together and share one parse; it still
      // holds the stream header until it knows the receiver reads that version.
      ...(opts.trustedSource ? [] : await this.#versionGate(sig)),
    ];
    // An untrusted stream is verified by the guard, in the parse that checks it.
    return { transforms, sink, verifies: !opts.trustedSource };
  }

  /**
   * The absolute path `to` is received at: below the store directory, each
   * component a plain name (no `.`, `..`, control characters) and no existing
   * component a symlink or a non-directory.
   */
  async #receivePath(to: Volume): Promise<string> {
    const parts = to.path.split('/');
    const bad = parts.find((p) => p === '' || p === '.' || p === '..' || CONTROL.test(p));
    if (bad !== undefined || to.path.startsWith('/')) {
      throw new UnsafePathError(
        `refusing snapshot path ${JSON.stringify(to.path)}: it must be relative, without '.', '..' or control characters`,
      );
    }
    let at = this.location.dir;
    for (const part of parts.slice(0, -1)) {
      at = join(at, part);
      const st = await lstat(at).catch(() => undefined);
      if (!st) break;
      if (!st.isDirectory()) {
        throw new UnsafePathError(
          `refusing snapshot path ${JSON.stringify(to.path)}: ${at} is a symlink or not a directory`,
        );
      }
    }
    return join(this.location.dir, ...parts);
  }

  /**
   * Warns when an untrusted stream's snapshot UUID is already on this
   * filesystem (a copy, or the original). It is received all the same: a
   * restore onto the originals' filesystem is legitimate, and buttersink pins
   * parents by own UUID; but `btrfs receive` elsewhere resolves a UUID by first
   * match, so a planted copy could mislead other tools. (The server refuses.)
   */
  async #warnKnownTarget(to: Volume, sig: { signal?: AbortSignal }): Promise<void> {
    const known = (await this.#listing(sig.signal)).all.find(
      (s) => s.uuid === to.uuid || s.receivedUuid === to.uuid,
    );
    if (known) {
      warn(
        'TARGET_UUID_KNOWN',
        `${to.path}: UUID ${to.uuid} is already on this filesystem (${JSON.stringify(known.fsPath.slice(0, 200))}); receiving a second subvolume with it`,
      );
    }
  }

  /**
   * The copy of `from` in this store an incremental is received on, and
   * whether `btrfs receive` would find exactly it: by its own UUID for the
   * SNAPSHOT (refused when another subvolume has that as received UUID), and by
   * received UUID for CLONE sources (exact only when it is the one subvolume
   * on the filesystem carrying `from.uuid` as received UUID).
   */
  async #exactParent(
    from: Volume,
    sig: { signal?: AbortSignal },
  ): Promise<{ path: string; ownUuid: string; clonesExact: boolean }> {
    const { subs, marked, all } = await this.#listing(sig.signal);
    const here = subs.filter(
      (s) =>
        s.readOnly &&
        !isPartialPath(s.path) &&
        !marked.has(s.path) &&
        (s.receivedUuid ?? s.uuid) === from.uuid,
    );
    const copy = here[0];
    if (!copy?.uuid) {
      throw new StoreError(
        `incremental parent ${from.path} (${from.uuid}) is not in ${this.location.dir}`,
      );
    }
    const decoy = all.find((s) => s.receivedUuid === copy.uuid);
    if (decoy) {
      throw new StoreError(
        `cannot pin incremental parent ${copy.absPath}: subvolume ${JSON.stringify(decoy.fsPath)} carries its UUID ${copy.uuid} as received UUID`,
      );
    }
    const sameReceived = all.filter((s) => s.receivedUuid === from.uuid);
    const clonesExact = copy.receivedUuid === from.uuid && sameReceived.length === 1;
    return { path: copy.absPath, ownUuid: copy.uuid, clonesExact };
  }

  /**
   * Before a run sends anything: every planned snapshot's path must be free
   * (the receive would refuse it after the earlier ones were sent), and the
   * plan's total size plus a margin must fit in the free space.
   *
   * Free space is `statfs` (`f_bavail × f_bsize`, what `df` shows): on btrfs the
   * kernel computes it from the unallocated space and the free space in data
   * chunks, divided by the data profile's copies, minus the global reserve, the
   * same inputs as `btrfs filesystem usage`'s "Free (estimated)"; it needs no
   * subprocess, no output parsing and no CAP_SYS_ADMIN (the usage ioctls do).
   */
  async preflight(
    transfers: readonly PreflightTransfer[],
    opts: PreflightOptions = {},
  ): Promise<PreflightProblem[]> {
    const problems: PreflightProblem[] = [];
    for (const t of transfers) {
      // Unsafe paths are refused per transfer by `receive` (#receivePath).
      const final = join(this.location.dir, t.to.path);
      if ((await lexists(final)) && !(await lexists(markerPath(final)))) {
        problems.push({
          code: 'NAME_CLASH',
          message: `${final} already exists and is not snapshot ${t.to.uuid}; move it away first`,
        });
      }
    }
    opts.signal?.throwIfAborted();
    if (opts.spaceCheck === false || transfers.length === 0) return problems;
    // Refuse on measured sizes only: an estimate can be a guess (1 GiB per full
    // send without quotas), so a plan that fits only by its estimates is a warning.
    const withMargin = (n: number) =>
      Math.ceil(n * (1 + SPACE_MARGIN_FRACTION)) + SPACE_MARGIN_BYTES;
    const bytes = transfers.reduce((sum, t) => sum + t.size, 0);
    const measured = transfers.reduce((sum, t) => sum + (t.estimated ? 0 : t.size), 0);
    const st = await statfs(this.location.dir);
    const free = st.bavail * st.bsize;
    debug('preflight space', { dir: this.location.dir, bytes, measured, free });
    const dir = this.location.dir.endsWith('/') ? this.location.dir : `${this.location.dir}/`;
    const room = `${formatBytes(free)} free (btrfs estimate)`;
    if (measured > 0 && withMargin(measured) > free) {
      problems.push({
        code: 'NO_SPACE',
        message:
          `the plan needs about ${formatBytes(withMargin(measured))} at ${dir} (${formatBytes(measured)} + margin), ` +
          `${room}; free some space, or pass --no-space-check`,
      });
    } else if (withMargin(bytes) > free) {
      problems.push({
        code: 'NO_SPACE',
        warning: true,
        message: `the plan may need about ${formatBytes(withMargin(bytes))} at ${dir} (${formatBytes(bytes)}, ${formatBytes(bytes - measured)} of it estimated, + margin), ${room}`,
      });
    }
    return problems;
  }

  async deleteVolume(volume: Volume, opts: StoreOpOptions = {}): Promise<void> {
    try {
      await deleteSubvolume(this.pathOf(volume), opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      this.#listings.invalidate();
      throw err;
    }
    this.#listings.deleted(volume.path);
    await unlink(`${this.pathOf(volume)}.bs`).catch(() => undefined);
  }

  async deleteDiff(diff: DiffOffer): Promise<void> {
    throw new StoreError(
      `a btrfs store holds snapshots, not diffs (asked to delete ${diff.to}_${diff.from ?? 'None'})`,
    );
  }

  async listPartials(opts: StoreOpOptions = {}): Promise<Partial[]> {
    await this.#checkDir();
    const { subs, marked } = await this.#listing(opts.signal);
    const partials = subs.filter((s) => isPartialPath(s.path) || marked.has(s.path));
    // A marker whose subvolume was never created is a partial of its own.
    const paths = new Set(subs.map((s) => s.path));
    const orphans = [...marked].filter((m) => !paths.has(m));
    return [
      ...partials.map((s) => ({ where: s.absPath })),
      ...orphans.map((m) => ({ where: markerPath(join(this.location.dir, m)) })),
    ];
  }

  /**
   * The subvolumes below the directory, those a receiving marker marks and
   * the whole filesystem's, from one listing (two `btrfs` processes), kept
   * while the lock is held (see `listing-cache.ts`).
   */
  #listing(signal: AbortSignal | undefined): Promise<StoreListing> {
    return this.#listings.get(async () => {
      const { below, all } = await listFilesystem(this.location.dir, {
        otime: false,
        ...(signal ? { signal } : {}),
      });
      return { subs: below, marked: await this.#marked(below), all };
    });
  }

  /** Store-relative paths of the subvolumes (existing or not) a receiving marker marks. */
  async #marked(subs: readonly SubvolumeInfo[]): Promise<Set<string>> {
    return markedPaths(this.location.dir, ['.', ...subs.map((s) => dirname(s.path))]);
  }

  /**
   * Tells the kept listing that `to`, received at `path` and shown as `show`,
   * is complete. Never throws: the snapshot is complete whatever happens here;
   * a listing it cannot update is forgotten instead.
   */
  async #committed(to: Volume, path: string, show: SubvolumeDetails): Promise<void> {
    if (!this.#opts.cacheListing || !this.#lock) return;
    let absPath: string;
    try {
      absPath = await realpath(path);
    } catch {
      this.#listings.invalidate();
      return;
    }
    this.#listings.committed({
      id: show.id,
      topLevel: show.topLevel,
      fsPath: show.fsPath,
      absPath,
      path: to.path,
      uuid: show.uuid,
      parentUuid: show.parentUuid,
      receivedUuid: show.receivedUuid,
      generation: show.generation,
      otransid: show.otransid,
      otime: show.otime,
      readOnly: show.readOnly,
    });
  }

  /** Removes the marked partial at `final` (subvolume, then marker), if there is one. */
  async #clearMarked(final: string, signal?: AbortSignal): Promise<void> {
    if (!(await lexists(markerPath(final)))) return;
    debug('removing earlier partial before receiving', { final });
    await this.#locked(() => this.#removePartial(final, signal), signal);
  }

  async deletePartials(partials: readonly Partial[], opts: StoreOpOptions = {}): Promise<void> {
    if (partials.length === 0) return;
    await this.#locked(async () => {
      for (const p of partials) await this.#removePartial(p.where, opts.signal);
    }, opts.signal);
  }

  /**
   * Starts `btrfs send` of `to` (incremental from `from`) with its stdout a
   * pipe nobody has read yet, for `joinProcesses` (see `fused-transfer.ts`).
   */
  spawnSend(to: Volume, from: Volume | null, opts: { compressedData?: boolean } = {}): BtrfsChild {
    return spawnBtrfsSend(this.#sendSpec(to, from, opts.compressedData));
  }

  /**
   * Prepares receiving `to` in place from this machine's own `btrfs send`
   * (see the module header): clears an earlier marked partial, checks the name
   * is free and writes the marker. Undefined (nothing written) when it cannot
   * be exact: for an incremental, `btrfs receive` finds the parent (and clone
   * sources) by received UUID, so the copy here must be the one subvolume on
   * the filesystem with `from`'s UUID as received UUID.
   */
  async fusedReceive(
    to: Volume,
    from: Volume | null,
    opts: StoreOpOptions = {},
  ): Promise<FusedReceive | undefined> {
    const signal = opts.signal;
    const sig = signal ? { signal } : {};
    const final = await this.#receivePath(to);
    const parent = from ? await this.#exactParent(from, sig) : undefined;
    if (parent && !parent.clonesExact) return undefined;
    await mkdir(dirname(final), { recursive: true });
    const realDir = (await requireBtrfs(dirname(final))).realPath;
    await this.#clearMarked(final, signal);
    if (await lexists(final)) {
      throw new StoreError(
        `${final} already exists and is not snapshot ${to.uuid}; move it away first`,
      );
    }
    signal?.throwIfAborted();
    this.#listings.changing();
    await writeMarker(final, to.uuid);
    const target = join(realDir, basename(final));
    let child: BtrfsChild | undefined;
    let name: string | undefined;
    return {
      where: final,
      spawn: (stdin) => (child = spawnBtrfsReceive(realDir, stdin, (n) => (name = n))),
      commit: async () => {
        if (name !== basename(final)) {
          throw new StoreError(`btrfs receive created ${name ?? 'nothing'}, not ${final}`);
        }
        const show = await checkReceived(final, to, parent, sig);
        await removeMarker(final);
        await this.#committed(to, final, show);
      },
      failure: async (cause) =>
        receiveFailure(child, realDir, cause, (await lexists(target)) ? target : undefined),
    };
  }

  /**
   * Takes `<dir>/.buttersink.lock` (see `lock.ts`); rejects with a LockedError
   * naming the holder when another run holds it. One lock per store object.
   */
  async lock(opts: LockOptions = {}): Promise<StoreLock> {
    await this.#checkDir();
    const dir = this.location.dir;
    if (this.#lock) throw new StoreError(`${dir}: this store already holds its lock`);
    const lock = await acquireFileLock({
      ...opts,
      dir,
      label: dir.endsWith('/') ? dir : `${dir}/`,
    });
    this.#lock = lock;
    if (this.#opts.cacheListing) this.#listings.enable();
    return forgettingLock(lock, () => {
      if (this.#lock !== lock) return;
      this.#lock = undefined;
      this.#listings.disable();
    });
  }

  /**
   * Works under the lock another process of this run holds (see `joinFileLock`):
   * operations that need the lock use it instead of taking their own. Rejects
   * with a LockedError unless `<dir>/.buttersink.lock` is held, live, with `token`.
   */
  async joinLock(token: string, opts: StoreOpOptions = {}): Promise<StoreLock> {
    await this.#checkDir();
    const dir = this.location.dir;
    if (this.#lock) throw new StoreError(`${dir}: this store already holds its lock`);
    const lock = await joinFileLock({
      ...opts,
      dir,
      token,
      label: dir.endsWith('/') ? dir : `${dir}/`,
    });
    this.#lock = lock;
    if (this.#opts.cacheListing) this.#listings.enable();
    return {
      ...lock,
      release: () => {
        if (this.#lock === lock) {
          this.#lock = undefined;
          this.#listings.disable();
        }
        return Promise.resolve();
      },
    };
  }

  /** Runs `fn` under this store's lock: the one it holds, else one taken for `fn` alone. */
  async #locked<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#lock) return fn();
    const lock = await this.lock(signal ? { signal } : {});
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /**
   * Deletes a partial: a subvolume (or a leftover plain directory) named
   * `*.part`; a marked subvolume, then its marker; a marker without subvolume.
   */
  async #removePartial(path: string, signal?: AbortSignal): Promise<void> {
    // What the kept listing says of partials is no longer so.
    this.#listings.invalidate();
    const markerOnly = markedName(basename(path)) !== undefined && !(await isSubvolume(path));
    if (markerOnly || (await lexists(markerPath(path)))) {
      const marked = markerOnly ? join(dirname(path), markedName(basename(path))!) : path;
      if (await lexists(marked)) await deleteSubvolume(marked, signal ? { signal } : {});
      await removeMarker(marked);
      return;
    }
    if (
      !basename(path).endsWith(PARTIAL_SUFFIX) &&
      !isPartialPath(relative(this.location.dir, path))
    ) {
      throw new StoreError(`refusing to remove ${path}: not a partial transfer`);
    }
    try {
      await deleteSubvolume(path, signal ? { signal } : {});
    } catch (err) {
      // Not a subvolume: a plain directory left by an older layout.
      await rmdir(path).catch(() => {
        throw err;
      });
    }
  }

  async close(): Promise<void> {}
}

/** A receive in place prepared by {@link BtrfsStore.fusedReceive}. */
export interface FusedReceive {
  /** Absolute path the snapshot is received at. */
  readonly where: string;
  /** Starts `btrfs receive` reading `stdin`, another process's stdout, directly. */
  spawn(stdin: Readable): BtrfsChild;
  /**
   * Once sender and receiver exited 0: checks the subvolume (read-only,
   * received UUID, parent) and removes the marker; a failed check leaves it.
   */
  commit(): Promise<void>;
  /** The error to report for a receiver that failed with `cause`. */
  failure(cause: unknown): Promise<Error>;
}

/**
 * The checks before a received subvolume at `path` becomes `to`: read-only
 * with `to`'s UUID as received UUID (btrbk's rule of a complete receive) and,
 * for an incremental, built on the exact parent copy. Resolves with what it showed.
 */
async function checkReceived(
  path: string,
  to: Volume,
  parent: { path: string; ownUuid: string } | undefined,
  sig: { signal?: AbortSignal },
): Promise<SubvolumeDetails> {
  const show = await subvolumeShow(path, sig);
  if (show.receivedUuid !== to.uuid || !show.readOnly) {
    throw new StoreError(
      `received ${path} has received UUID ${show.receivedUuid ?? 'none'}, expected ${to.uuid}; left as partial`,
    );
  }
  if (parent && show.parentUuid !== parent.ownUuid) {
    throw new StoreError(
      `received ${path} was built on ${show.parentUuid ?? 'no parent'}, not on ${parent.path}; left as partial`,
    );
  }
  return show;
}

/** How many `.bs` files {@link BtrfsStore} reads at once. */
const SIZE_INFO_READS = 16;

/**
 * The paths (relative to `root`) of every entry of the directories `dirs`
 * (relative to `root`); an unreadable directory holds none.
 */
async function filesIn(root: string, dirs: Iterable<string>): Promise<Set<string>> {
  const found = new Set<string>();
  for (const dir of new Set(dirs)) {
    const entries = await readdir(join(root, dir)).catch(() => [] as string[]);
    for (const e of entries) found.add(dir === '.' ? e : join(dir, e));
  }
  return found;
}

/** True when something is at `path`, a dangling symlink included. */
async function lexists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
