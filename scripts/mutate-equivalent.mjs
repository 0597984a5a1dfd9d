// Surviving mutants that cannot change behaviour, with the reason; read by
// scripts/mutate-all.mjs to mark them in bench/MUTATION.md. They still count
// as survived in the score. `open: true` marks a survivor that CAN change
// behaviour but has no test yet, with what such a test needs. Match: file, line, mutator and, when given, the
// column (where several mutants of one mutator share a line) and the start of the replacement text. A line that moves needs its entry moved.

const QUEUE_RESET =
  'with the reset of a drained queue gone, the compaction below empties it once 64 slots are released; released slots hold no chunk, so results and memory bound are the same';

const QUEUE_MORE_COMPACTION =
  'compacts more often than needed (the slots array is copied sooner): same bytes out, memory still bounded; only CPU differs';

const CRC_EMPTY =
  'the length test only skips a call: feeding 0 bytes leaves the CRC state unchanged in both engines';

/** @type {{ file: string, line: number, column?: number, mutator: string, replacement?: string, reason: string, open?: boolean }[]} */
export const equivalent = [
  {
    file: 'src/stages/receive-guard.ts',
    line: 111,
    mutator: 'ObjectLiteral',
    reason:
      'the result object gets both fields assigned when the stream ends, before anyone can read it',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 118,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'p.streams > 1 holds only from a second header on, and that header is the first event it is true for',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 118,
    mutator: 'EqualityOperator',
    reason:
      'a second stream is then refused at its first command (END at the latest, by the one-subvolume or first checks) instead of at its header: refused either way, only the 17 header bytes may pass before the error',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 149,
    mutator: 'Regex',
    reason:
      'trailing slashes left on the parent root only double a slash in the looked-up path, which lstat ignores',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 152,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      "StreamTree never looks up '' (the root is a directory from the start), so the root branch is not reached",
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 172,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'the guard parser collects attributes for every command, so the list is never undefined here',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 223,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'a SUBVOL is only accepted with no announced parent, and a SUBVOL without CLONE_UUID (all the kernel sends) then compares undefined to undefined; only a hand-made SUBVOL carrying a CLONE_UUID would be refused, i.e. stricter',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 249,
    mutator: 'ArrayDeclaration',
    reason:
      'a root command then resolves one made-up name below the root: absent in any tree, so nothing is refused or recorded differently',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 259,
    mutator: 'ConditionalExpression',
    reason:
      'MKSOCK then falls through to MKDIR and is recorded as a directory instead of a plain entry: neither is a symlink, and the guard refuses only symlinks on the way (a path through a non-directory fails in the receiver)',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 303,
    mutator: 'ConditionalExpression',
    reason: 'an empty default case: any case label in its place changes nothing',
  },
  {
    file: 'src/streams/commit-sink.ts',
    line: 76,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: 'destroy() on an already destroyed stream is a no-op in Node',
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
  {
    file: 'src/btrfs/send-stream/byte-queue.ts',
    line: 80,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: QUEUE_RESET,
  },
  {
    file: 'src/btrfs/send-stream/byte-queue.ts',
    line: 80,
    mutator: 'BlockStatement',
    reason: QUEUE_RESET,
  },
  {
    file: 'src/btrfs/send-stream/byte-queue.ts',
    line: 83,
    mutator: 'LogicalOperator',
    reason: QUEUE_MORE_COMPACTION,
  },
  {
    file: 'src/btrfs/send-stream/byte-queue.ts',
    line: 83,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: QUEUE_MORE_COMPACTION,
  },
  {
    file: 'src/btrfs/send-stream/byte-queue.ts',
    line: 83,
    mutator: 'EqualityOperator',
    replacement: 'this.#head > 64',
    reason: 'compacts at 65 released slots instead of 64: same bytes out, memory still bounded',
  },
  {
    file: 'src/btrfs/send-stream/byte-queue.ts',
    line: 83,
    mutator: 'EqualityOperator',
    replacement: 'this.#head * 2 >= this.#parts.length',
    reason: QUEUE_MORE_COMPACTION,
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 148,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'passes maxCommandLength: undefined to the parser, which takes undefined as its default limit, as when the option is left out',
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 154,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'the event-type test alone: only commands carry attributes (the header does not), so `!e.attributes` still skips everything else',
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 164,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'the boundary test alone: when the boundary is the offset, holding back up to the boundary takes the same bytes as taking everything',
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 164,
    mutator: 'EqualityOperator',
    replacement: 'p.boundary <= p.offset',
    reason:
      'the boundary never lies past the offset, and when they are equal holding back up to the boundary takes the same bytes',
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 204,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      "with no name given each test of the name is false for undefined (not '', '.', '..'; String(undefined) has no / or NUL), so nothing is refused",
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 224,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      "a CLONE's parent lookup finds its own CLONE_UUID again (mapped twice, same result, and pinning is for SNAPSHOT only); a SUBVOL has no CLONE_UUID from the kernel (btrfs receive ignores one on SUBVOL)",
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 326,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'the typeof tests alone: a non-object has no string `uuid` (the next test throws the same UsageError), and isUuid of a non-string tests its String() form, which no number or undefined matches',
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 211,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'the decoding right after (uuidFromString) refuses a pinParent that is not a UUID with the same UsageError',
  },
  {
    file: 'src/stages/uuid-rewrite.ts',
    line: 211,
    mutator: 'BlockStatement',
    reason:
      'the decoding right after (uuidFromString) refuses a pinParent that is not a UUID with the same UsageError',
  },
];
