// Surviving mutants that cannot change behaviour, with the reason; read by
// scripts/mutate-all.mjs to mark them in bench/MUTATION.md. They still count
// as survived in the score. `open: true` marks a survivor that CAN change
// behaviour but has no test yet, with what such a test needs. Match: file, line, mutator and, when given, the
// start of the replacement text. A line that moves needs its entry moved.

const CRC_EMPTY =
  'the length test only skips a call: feeding 0 bytes leaves the CRC state unchanged in both engines';

const PARENT_CHECK =
  'the parent check after btrfs receive: only a receive that btrfs built on another subvolume than the pinned parent copy fails it, which needs a stream whose clone UUID points elsewhere on the destination filesystem (not constructed yet; the guard and -C pinning stop it before)';

/** @type {{ file: string, line: number, mutator: string, replacement?: string, reason: string, open?: boolean }[]} */
export const equivalent = [
  {
    file: 'src/streams/commit-sink.ts',
    line: 73,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: 'destroy() on an already destroyed stream is a no-op in Node',
  },
  {
    file: 'src/stores/btrfs/btrfs-store.ts',
    line: 321,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: PARENT_CHECK,
    open: true,
  },
  {
    file: 'src/stores/btrfs/btrfs-store.ts',
    line: 321,
    mutator: 'BlockStatement',
    reason: PARENT_CHECK,
    open: true,
  },
  {
    file: 'src/stores/btrfs/btrfs-store.ts',
    line: 323,
    mutator: 'LogicalOperator',
    reason: 'only the wording of the refusal of the parent check above (same open test)',
    open: true,
  },
  {
    file: 'src/btrfs/send-stream/crc.ts',
    line: 47,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: CRC_EMPTY,
  },
  {
    file: 'src/btrfs/send-stream/crc.ts',
    line: 74,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: CRC_EMPTY,
  },
];
