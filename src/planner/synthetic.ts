/**
 * A deterministic generator of synthetic planner inputs, for tests and the
 * planner benchmark: several directories, each a chain of snapshots of one
 * read-write subvolume, with increasing generations, the oldest part of each
 * chain already at the destination.
 */
import type { DiffOffer, PlanInput, PlanOptions, StoreKind } from './plan-input.js';
import type { Volume } from './volume.js';

/** Options of {@link syntheticInput}. */
export interface SyntheticOptions {
  /** Number of source snapshots. */
  readonly snapshots: number;
  /** Number of directories (families). Default: one per 100 snapshots, at least 1. */
  readonly directories?: number;
  /** Fraction (0–1) of each directory's oldest snapshots already at the destination. Default 0.5. */
  readonly destFraction?: number;
  /** Destination kind. For `s3` the destination holds a full every 8th snapshot and diffs between. Default `btrfs`. */
  readonly destKind?: StoreKind;
  /** Give snapshots qgroup sizes (quotas on). Default false. */
  readonly quotas?: boolean;
  /** PRNG seed. Default 1. */
  readonly seed?: number;
  /** Planner options to include. */
  readonly options?: PlanOptions;
}

/** Deterministic 32-bit PRNG (mulberry32), values in [0, 1): same seed, same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A UUID-shaped string from a counter. */
function fakeUuid(n: number): string {
  const h = n.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${h}`;
}

/** Builds a synthetic input. Same options, same input. */
export function syntheticInput(opts: SyntheticOptions): PlanInput {
  const rand = prng(opts.seed ?? 1);
  const dirs = Math.max(1, opts.directories ?? Math.ceil(opts.snapshots / 100));
  const destFraction = opts.destFraction ?? 0.5;
  const destKind = opts.destKind ?? 'btrfs';
  const source: Volume[] = [];
  const dest: Volume[] = [];
  const destDiffs: DiffOffer[] = [];
  let counter = 0;
  for (let d = 0; d < dirs; d++) {
    const count = Math.floor(opts.snapshots / dirs) + (d < opts.snapshots % dirs ? 1 : 0);
    const parentUuid = fakeUuid(++counter);
    const base = Math.round((0.5 + rand()) * 2 ** 30);
    let gen = 1000;
    let total = base;
    let prev: Volume | undefined;
    for (let i = 0; i < count; i++) {
      gen += 10 + Math.floor(rand() * 190);
      const change = Math.round(total * 0.01 * rand());
      total += Math.round(change * (rand() - 0.3));
      const v: Volume = {
        uuid: fakeUuid(++counter),
        path: `dir${String(d).padStart(3, '0')}/snap-${String(i).padStart(6, '0')}`,
        gen,
        parentUuid,
        ...(opts.quotas ? { totalSize: total, exclusiveSize: change } : {}),
      };
      source.push(v);
      if (i < Math.floor(count * destFraction)) {
        dest.push(v);
        if (destKind === 's3') {
          const full = i % 8 === 0 || prev === undefined;
          destDiffs.push({
            to: v.uuid,
            from: full ? null : (prev as Volume).uuid,
            size: full ? total : Math.max(16384, change),
            estimated: false,
            store: 'dest',
            atDest: true,
          });
        }
      }
      prev = v;
    }
  }
  return {
    source: { kind: 'btrfs', volumes: source },
    dest: { kind: destKind, volumes: dest, ...(destKind === 's3' ? { diffs: destDiffs } : {}) },
    ...(opts.options ? { options: opts.options } : {}),
  };
}
