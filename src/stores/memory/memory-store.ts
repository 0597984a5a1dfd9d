/**
 * A store held in memory: stored send streams ("diffs"), as an S3 bucket holds
 * them, kept as bytes in this process. For library users' tests and the sync
 * engine's unit tests; it keeps the same promises as every other store (the
 * shared contract suite in `test/contract/` runs against it).
 *
 * To the planner it is a diff store (kind `s3`): it offers exactly the streams
 * it holds, and a snapshot is there when a stream creating it is. Every
 * receive runs the stream through `streamVerify`, so what it holds, and what
 * its `send` gives back byte for byte, is a valid send stream. A receive keeps
 * its bytes as a partial (`<path>.part`) until the stream ended and verified;
 * a failed receive leaves that partial, hidden from `view`, for
 * `listPartials`/`deletePartials`.
 *
 * Buffering: a whole stream is kept in memory (it is a test store).
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { StoreError } from '../../errors.js';
import { edgeKey } from '../../planner/plan-input.js';
import type { DiffOffer, StoreView } from '../../planner/plan-input.js';
import type { Volume } from '../../planner/volume.js';
import { streamVerify } from '../../stages/stream-verify.js';
import { runPipeline } from '../../streams/pipeline.js';
import { destroyOnAbort, sinkStage, sourceStage } from '../../streams/stage.js';
import type { SourceStage } from '../../streams/stage.js';
import { LockedError, newHolder } from '../lock.js';
import type { LockOptions, StoreLock } from '../lock.js';
import type * as S from '../store.js';
import type { S3Location } from '../uri.js';

/** One stored send stream. */
export interface MemoryDiff {
  /** The snapshot it creates (its path in this store). */
  readonly to: Volume;
  /** Its parent, null for a full stream. */
  readonly from: Volume | null;
  /** The send stream, a valid one (verified when stored). */
  readonly bytes: Buffer;
}

/** A receive that did not finish. */
interface MemoryPartial extends S.Partial {
  readonly id: string;
  readonly chunks: Buffer[];
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Name in its URI (`memory://<name>/`), for messages. Default `memory`. */
  name?: string;
  /** Bytes of room for {@link MemoryStore.preflight}'s space check. Default unlimited. */
  capacity?: number;
}

/** A diff store in memory; see the module header. */
export class MemoryStore implements S.Store {
  readonly kind = 's3' as const;
  readonly location: S3Location;
  readonly #diffs = new Map<string, MemoryDiff>();
  readonly #partials = new Map<string, MemoryPartial>();
  readonly #capacity: number;
  #lock: StoreLock | undefined;

  constructor(opts: MemoryStoreOptions = {}) {
    const name = opts.name ?? 'memory';
    this.location = { kind: 's3', uri: `memory://${name}/`, bucket: name, prefix: '' };
    this.#capacity = opts.capacity ?? Infinity;
  }

  /** The streams held, in the order stored. */
  get diffs(): readonly MemoryDiff[] {
    return [...this.#diffs.values()];
  }

  /**
   * Stores a stream directly (to seed a store in a test), verified like a
   * receive. Rejects with StreamCorruptError for an invalid stream and with
   * StoreError when the path is taken by another snapshot.
   */
  async add(to: Volume, from: Volume | null, bytes: Buffer): Promise<void> {
    const { sink, transforms } = await this.receive(to, from);
    await runPipeline([sourceStage('memory add', Readable.from([bytes])), ...transforms, sink]);
  }

  async view(role: S.StoreRole, opts: S.StoreOpOptions = {}): Promise<StoreView> {
    opts.signal?.throwIfAborted();
    const volumes = new Map<string, Volume>();
    const diffs: DiffOffer[] = [];
    for (const d of this.#diffs.values()) {
      if (!volumes.has(d.to.uuid)) volumes.set(d.to.uuid, d.to);
      diffs.push({
        to: d.to.uuid,
        from: d.from?.uuid ?? null,
        size: d.bytes.length,
        estimated: false,
        store: role,
        atDest: role === 'dest',
      });
    }
    return { kind: this.kind, volumes: [...volumes.values()], diffs };
  }

  /** The size of a stored diff; a diff it does not hold cannot be measured (StoreError). */
  async measure(to: Volume, from: Volume | null, opts: S.StoreOpOptions = {}): Promise<number> {
    opts.signal?.throwIfAborted();
    return this.#stored(to, from).bytes.length;
  }

  send(to: Volume, from: Volume | null, opts: S.StoreOpOptions = {}): SourceStage<unknown> {
    const stream = Readable.from(
      (function* (bytes: Buffer) {
        // 64 KiB chunks, as a file or socket would give them.
        for (let i = 0; i < bytes.length; i += 65536) yield bytes.subarray(i, i + 65536);
      })(this.#stored(to, from).bytes),
      { objectMode: false },
    );
    destroyOnAbort(stream, opts.signal);
    return sourceStage(`memory send ${to.path}`, stream);
  }

  async receive(
    to: Volume,
    from: Volume | null,
    opts: S.ReceiveOptions = {},
  ): Promise<S.ReceiveStages> {
    opts.signal?.throwIfAborted();
    const taken = this.#byPath(to.path);
    if (taken && taken.uuid !== to.uuid) {
      throw new StoreError(`${this.#where(to.path)}: already exists (another snapshot)`);
    }
    if (this.#diffs.has(edgeKey(to.uuid, from?.uuid ?? null))) {
      throw new StoreError(`${this.#where(to.path)}: this diff is already stored`);
    }
    const partial: MemoryPartial = {
      id: randomBytes(8).toString('hex'),
      where: `${this.#where(to.path)}.part`,
      chunks: [],
    };
    this.#partials.set(partial.id, partial);
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        partial.chunks.push(chunk);
        cb();
      },
      // Only reached after streamVerify saw END: commit under the final name.
      final: (cb) => {
        const now = this.#byPath(to.path);
        if (now && now.uuid !== to.uuid) {
          cb(new StoreError(`${this.#where(to.path)}: already exists (another snapshot)`));
          return;
        }
        this.#diffs.set(edgeKey(to.uuid, from?.uuid ?? null), {
          to,
          from,
          bytes: Buffer.concat(partial.chunks),
        });
        this.#partials.delete(partial.id);
        cb();
      },
    });
    destroyOnAbort(sink, opts.signal);
    const sig = opts.signal ? { signal: opts.signal } : {};
    return { transforms: [streamVerify(sig)], sink: sinkStage(`memory receive ${to.path}`, sink) };
  }

  describeDiff(to: Volume, from: Volume | null): string {
    return `${this.#where(to.path)} (${edgeKey(to.uuid, from?.uuid ?? null)})`;
  }

  async preflight(
    transfers: readonly S.PreflightTransfer[],
    opts: S.PreflightOptions = {},
  ): Promise<S.PreflightProblem[]> {
    const problems: S.PreflightProblem[] = [];
    for (const t of transfers) {
      const taken = this.#byPath(t.to.path);
      if (taken && taken.uuid !== t.to.uuid) {
        problems.push({
          code: 'NAME_CLASH',
          message: `${this.#where(t.to.path)} already exists (another snapshot)`,
        });
      }
    }
    const total = transfers.reduce((n, t) => n + t.size, 0);
    const used = this.diffs.reduce((n, d) => n + d.bytes.length, 0);
    if ((opts.spaceCheck ?? true) && used + total > this.#capacity) {
      problems.push({
        code: 'NO_SPACE',
        message: `${this.location.uri}: the plan needs ${total} bytes, ${this.#capacity - used} free`,
        ...(transfers.some((t) => t.estimated) ? { warning: true } : {}),
      });
    }
    return problems;
  }

  /** Subvolume stores only: a diff store deletes diffs (StoreError). */
  async deleteVolume(volume: Volume): Promise<void> {
    throw new StoreError(`${this.#where(volume.path)}: a diff store deletes diffs, not snapshots`);
  }

  async deleteDiff(diff: DiffOffer, opts: S.StoreOpOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    const key = edgeKey(diff.to, diff.from);
    if (!this.#diffs.delete(key)) {
      throw new StoreError(`${this.location.uri}${key}: no such diff`);
    }
  }

  async listPartials(opts: S.StoreOpOptions = {}): Promise<S.Partial[]> {
    opts.signal?.throwIfAborted();
    return [...this.#partials.values()];
  }

  /** Removes partials this store listed; a partial of another store is a StoreError. */
  async deletePartials(partials: readonly S.Partial[], opts: S.StoreOpOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    for (const p of partials) {
      const id = (p as S.Partial & { id?: unknown }).id;
      if (typeof id !== 'string' || this.#partials.get(id) !== p) {
        throw new StoreError(`${p.where}: not a partial of this store`);
      }
      this.#partials.delete(id);
    }
  }

  /** One lock per store object; a second `lock()` while held rejects with LockedError. */
  async lock(opts: LockOptions = {}): Promise<StoreLock> {
    opts.signal?.throwIfAborted();
    const where = `${this.location.uri}.buttersink-lock`;
    if (this.#lock) {
      throw new LockedError(`${where}: locked by another run`, {
        holder: this.#lock.holder,
        lock: where,
      });
    }
    const lock: StoreLock = {
      where,
      holder: newHolder(opts.command !== undefined ? { command: opts.command } : {}),
      signal: new AbortController().signal,
      release: async () => {
        if (this.#lock === lock) this.#lock = undefined;
      },
    };
    this.#lock = lock;
    return lock;
  }

  async close(): Promise<void> {}

  #where(path: string): string {
    return `${this.location.uri}${path}`;
  }

  #byPath(path: string): Volume | undefined {
    for (const d of this.#diffs.values()) if (d.to.path === path) return d.to;
    return undefined;
  }

  #stored(to: Volume, from: Volume | null): MemoryDiff {
    const d = this.#diffs.get(edgeKey(to.uuid, from?.uuid ?? null));
    if (!d) {
      throw new StoreError(
        `${this.#where(to.path)}: no stored diff ${edgeKey(to.uuid, from?.uuid ?? null)}`,
      );
    }
    return d;
  }
}
