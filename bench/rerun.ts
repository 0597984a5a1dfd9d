/**
 * Benchmark scenarios for fixed costs (issue 12, "Fixed costs"), selected in
 * bench/run.ts as `rerun` (`npm run bench -- rerun`):
 *
 * - A rerun with nothing to transfer, 1,000 read-only snapshots on each side
 *   (goal: < 0.3 s wall). The plain baseline is the least a script must do to
 *   find out the same thing: list both sides' subvolumes with their UUIDs and
 *   received UUIDs (`btrfs subvolume list -u -R`, once per side).
 * - Ten small incremental snapshots (a few KiB each) synced in one run against
 *   ten plain `btrfs send -p | btrfs receive` pipes in one shell: the cost per
 *   transfer that is not data (start-up, listing, probing, locks, spawns).
 *
 * The data lives on its own loop image, so the other groups' data is
 * untouched. The destination's 1,000 copies are made with plain pipes (a
 * chain of incrementals), which set the received UUIDs a rerun compares.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import type { Scenario } from './harness.js';

/** What bench/run.ts hands over. */
export interface RerunBenchContext {
  /** A directory on a mounted btrfs filesystem of its own, empty, ≥ 1 GiB. */
  root: string;
  /** The buttersink command line prefix (`node …/dist/bin/buttersink.js`). */
  bs: string;
}

const SNAPSHOTS = 1_000;
const SMALL = 10;

const sh = (cmd: string) => execa('bash', ['-o', 'pipefail', '-c', cmd]);

/** Zero-padded snapshot name `s0001`…, so names sort as they were made. */
const snap = (i: number) => `s${String(i).padStart(4, '0')}`;

/**
 * Makes `live` with a little data and `n` read-only snapshots of it in
 * `snaps/`, each after a small change, then receives all of them into
 * `copies/` with plain pipes (the first full, the rest incremental).
 */
async function makeChain(root: string, n: number): Promise<{ snaps: string; copies: string }> {
  const live = join(root, 'live');
  const snaps = join(root, 'snaps');
  const copies = join(root, 'copies');
  await sh(`mkdir -p ${snaps} ${copies} && btrfs subvolume create ${live} >/dev/null`);
  // One shell loop per phase: 1,000 execa calls would cost more than the work.
  await sh(
    `for i in $(seq 1 ${n}); do n=$(printf 's%04d' $i); echo $i > ${live}/counter; ` +
      `btrfs subvolume snapshot -r ${live} ${snaps}/$n >/dev/null || exit 1; done; sync`,
  );
  await sh(
    `prev=; for i in $(seq 1 ${n}); do n=$(printf 's%04d' $i); ` +
      `if [ -z "$prev" ]; then btrfs send -q ${snaps}/$n; else btrfs send -q -p ${snaps}/$prev ${snaps}/$n; fi ` +
      `| btrfs receive -q ${copies}/ || exit 1; prev=$n; done`,
  );
  return { snaps, copies };
}

/**
 * Builds the data and returns the scenarios. Takes a minute or two: 1,000
 * snapshots and 1,000 plain receives.
 */
export async function rerunScenarios(ctx: RerunBenchContext): Promise<Scenario[]> {
  const { root, bs } = ctx;
  console.error(`creating ${SNAPSHOTS} snapshots and their received copies…`);
  const big = await makeChain(join(root, 'many'), SNAPSHOTS);
  // Small incrementals: a base received on both sides, then SMALL more snapshots.
  const small = join(root, 'small');
  const live = join(small, 'live');
  await sh(
    `mkdir -p ${small}/snaps ${small}/ours ${small}/plain && btrfs subvolume create ${live} >/dev/null` +
      ` && head -c 4M /dev/urandom > ${live}/base && btrfs subvolume snapshot -r ${live} ${small}/snaps/${snap(0)} >/dev/null`,
  );
  await sh(
    `for i in $(seq 1 ${SMALL}); do n=$(printf 's%04d' $i); head -c 8K /dev/urandom > ${live}/f$i; ` +
      `btrfs subvolume snapshot -r ${live} ${small}/snaps/$n >/dev/null || exit 1; done; sync`,
  );
  for (const side of ['ours', 'plain']) {
    await sh(`btrfs send -q ${small}/snaps/${snap(0)} | btrfs receive -q ${small}/${side}/`);
  }
  const plainChain =
    `prev=${snap(0)}; for i in $(seq 1 ${SMALL}); do n=$(printf 's%04d' $i); ` +
    `btrfs send -q -p ${small}/snaps/$prev ${small}/snaps/$n | btrfs receive -q ${small}/plain/ || exit 1; prev=$n; done`;
  const deleteSmall = (side: string) =>
    `for i in $(seq 1 ${SMALL}); do btrfs subvolume delete -c ${small}/${side}/$(printf 's%04d' $i) >/dev/null 2>&1; done; rm -f ${small}/snaps/*.bs; true`;
  return [
    {
      name: `rerun with nothing to transfer, ${SNAPSHOTS.toLocaleString('en')} snapshots on each side (goal < 0.3 s) vs listing both sides with \`btrfs subvolume list -u -R\``,
      project: `${bs} -q ${big.snaps}/ ${big.copies}/`,
      baseline: `btrfs subvolume list -u -R ${big.snaps} >/dev/null && btrfs subvolume list -u -R ${big.copies} >/dev/null`,
    },
    {
      name: `${SMALL} small incremental snapshots (8 KiB each) in one run vs ${SMALL} plain \`btrfs send -p | btrfs receive\` pipes`,
      project: `${bs} -q ${small}/snaps/ ${small}/ours/`,
      baseline: plainChain,
      reset: `${deleteSmall('ours')}; ${deleteSmall('plain')}`,
    },
  ];
}
