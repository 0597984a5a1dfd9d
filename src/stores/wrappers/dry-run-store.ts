/**
 * A dry run (`-n`) as a store wrapper: {@link DryRunStore} delegates every
 * read to the store it wraps and refuses every write, so a run through it
 * changes nothing anywhere, whatever the code above it does.
 *
 * - reads (`view`, `listPartials`, `describeDiff`) delegate unchanged;
 * - `measure` delegates with `record: false`: the size is measured, not cached
 *   (the btrfs store's `<snapshot>.bs` is not written);
 * - `preflight` delegates and turns what a real run would refuse into a
 *   warning (`a real run would refuse to start: …`), returning only the
 *   problems that are warnings anyway;
 * - `send` delegates (a send stream is read, and `sync` sends nothing in a dry run);
 * - writes (`receive`, `copyFrom`, `deleteVolume`, `deleteDiff`,
 *   `deletePartials`) reject with a {@link DryRunError} and touch nothing;
 * - it has no `lock`: a dry run takes no lock, so it never waits for, nor
 *   blocks, a real run;
 * - `close` closes the wrapped store.
 */
import { StoreError } from '../../errors.js';
import { warn } from '../../log.js';
import type { DiffOffer, StoreView } from '../../planner/plan-input.js';
import type { Volume } from '../../planner/volume.js';
import type { SourceStage } from '../../streams/stage.js';
import type * as S from '../store.js';

/** A write asked of a {@link DryRunStore}: nothing was changed. */
export class DryRunError extends StoreError {
  override readonly code = 'DRY_RUN';
}

/** Wraps `inner` so that nothing it holds changes; see the module header. */
export class DryRunStore implements S.Store {
  readonly kind: S.Store['kind'];
  readonly location: S.Store['location'];
  /** The wrapped store. */
  readonly inner: S.Store;

  constructor(inner: S.Store) {
    this.inner = inner;
    this.kind = inner.kind;
    this.location = inner.location;
  }

  view(role: S.StoreRole, opts?: S.StoreOpOptions): Promise<StoreView> {
    return this.inner.view(role, opts);
  }

  /** Measures without recording the size (`record: false`). */
  measure(to: Volume, from: Volume | null, opts: S.MeasureOptions = {}): Promise<number> {
    return this.inner.measure(to, from, { ...opts, record: false });
  }

  send(to: Volume, from: Volume | null, opts?: S.StoreOpOptions): SourceStage<unknown> {
    return this.inner.send(to, from, opts);
  }

  receive(to: Volume, _from?: Volume | null): Promise<S.ReceiveStages> {
    return this.#refuse(`receive ${to.path}`);
  }

  copyFrom(_source: S.Store, to: Volume, _from?: Volume | null): Promise<number | undefined> {
    return this.#refuse(`copy ${to.path}`);
  }

  describeDiff(to: Volume, from: Volume | null): string {
    return this.inner.describeDiff?.(to, from) ?? to.path;
  }

  /**
   * The wrapped store's preflight, with what a real run would refuse warned
   * about (`a real run would refuse to start: …`) and left out; warnings returned.
   */
  async preflight(
    transfers: readonly S.PreflightTransfer[],
    opts?: S.PreflightOptions,
  ): Promise<S.PreflightProblem[]> {
    const problems = (await this.inner.preflight?.(transfers, opts)) ?? [];
    for (const p of problems) {
      if (!p.warning) warn(p.code, `a real run would refuse to start: ${p.message}`);
    }
    return problems.filter((p) => p.warning);
  }

  deleteVolume(volume: Volume): Promise<void> {
    return this.#refuse(`delete ${volume.path}`);
  }

  deleteDiff(diff: DiffOffer): Promise<void> {
    return this.#refuse(`delete diff ${diff.to}_${diff.from ?? 'None'}`);
  }

  listPartials(opts?: S.StoreOpOptions): Promise<S.Partial[]> {
    return this.inner.listPartials(opts);
  }

  deletePartials(partials: readonly S.Partial[]): Promise<void> {
    if (partials.length === 0) return Promise.resolve();
    return this.#refuse(`delete ${partials.length} partial transfer(s)`);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async #refuse(what: string): Promise<never> {
    throw new DryRunError(`${this.location.uri}: dry run: not going to ${what}`);
  }
}
