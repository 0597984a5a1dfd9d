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

const V8_SORT =
  "Array.prototype.sort in V8 (Node 20) only tests compare(a, b) < 0: a comparator's 'not less' branch returning 0 or 1 sorts the same";

const ONLY_IF_EQUAL = 'reached only when the two values differ, where <= and < (or >= and >) agree';

const DISTINCT_PATHS =
  "differs only for two entries with the same path, and a store's snapshots have distinct paths";

const RULE_SKIP =
  "the skip is a shortcut: for 'latest' periodOf gives undefined, and with a count of 0 or less `p > last - count` holds for no period, so the loop adds nothing either way";

const PASSES_IDLE =
  'a pass that changes nothing leaves the tree as it was, so running more of them (up to maxPasses) gives the same result';

const MADE_UP_ENTRY =
  'the made-up entry is no diff: its `to` is undefined, which no lookup of a UUID or null ever reaches, so it changes no chain';

const NEEDED_WALK =
  'the walk then goes on over ancestors already marked needed and still stops at -1 (needed[-1] is undefined): same marks';

const KEEP_REGEX =
  'the pattern has no optional group: when it matches both groups are set, when it does not m is null (and rule undefined)';

/** @type {{ file: string, line: number, column?: number, mutator: string, replacement?: string, reason: string, open?: boolean }[]} */
export const equivalent = [
  {
    file: 'src/stages/receive-guard.ts',
    line: 119,
    mutator: 'ObjectLiteral',
    reason:
      'the result object gets both fields assigned when the stream ends, before anyone can read it',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 131,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'p.streams > 1 holds only from a second header on, and that header is the first event it is true for',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 131,
    mutator: 'EqualityOperator',
    reason:
      'a second stream is then refused at its first command (END at the latest, by the one-subvolume or first checks) instead of at its header: refused either way, only the 17 header bytes may pass before the error',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 122,
    mutator: 'UnaryOperator',
    reason:
      'the initial lastEnd is never read: it is used only when the parser is at the END of a stream, and seeing that END set it',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 136,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'lastEnd is read only right after END (p.atEnd), and END is then the last command seen: recording every command offset leaves it at END’s offset all the same',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 160,
    mutator: 'Regex',
    reason:
      'trailing slashes left on the parent root only double a slash in the looked-up path, which lstat ignores',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 163,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      "StreamTree never looks up '' (the root is a directory from the start), so the root branch is not reached",
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 183,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'the guard parser collects attributes for every command, so the list is never undefined here',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 234,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'a SUBVOL is only accepted with no announced parent, and a SUBVOL without CLONE_UUID (all the kernel sends) then compares undefined to undefined; only a hand-made SUBVOL carrying a CLONE_UUID would be refused, i.e. stricter',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 260,
    mutator: 'ArrayDeclaration',
    reason:
      'a root command then resolves one made-up name below the root: absent in any tree, so nothing is refused or recorded differently',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 270,
    mutator: 'ConditionalExpression',
    reason:
      'MKSOCK then falls through to MKDIR and is recorded as a directory instead of a plain entry: neither is a symlink, and the guard refuses only symlinks on the way (a path through a non-directory fails in the receiver)',
  },
  {
    file: 'src/stages/receive-guard.ts',
    line: 314,
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
  // Planner scope.
  {
    file: 'src/planner/estimate.ts',
    line: 71,
    mutator: 'EqualityOperator',
    reason: 'the extra step subtracts from undefined: a NaN gap, which `gap > 0` drops',
  },
  {
    file: 'src/planner/estimate.ts',
    line: 78,
    column: 17,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'with fewer than two known generations the span is 0 or NaN, so the rate is infinite or NaN and the minimum rate stays',
  },
  {
    file: 'src/planner/estimate.ts',
    line: 86,
    column: 34,
    mutator: 'EqualityOperator',
    replacement: 'rate >= MIN_CHANGE_RATE',
    reason: 'at equality it assigns the value changeRate already has',
  },
  {
    file: 'src/planner/graph.ts',
    line: 70,
    column: 33,
    mutator: 'EqualityOperator',
    replacement: 'a.path <= b.path',
    reason: ONLY_IF_EQUAL,
  },
  {
    file: 'src/planner/graph.ts',
    line: 71,
    column: 33,
    mutator: 'EqualityOperator',
    replacement: 'a.uuid <= b.uuid',
    reason: ONLY_IF_EQUAL,
  },
  {
    file: 'src/planner/graph.ts',
    line: 79,
    column: 25,
    mutator: 'EqualityOperator',
    replacement: 'ga <= gb',
    reason: ONLY_IF_EQUAL,
  },
  {
    file: 'src/planner/graph.ts',
    line: 100,
    column: 10,
    mutator: 'EqualityOperator',
    replacement: 'i <= 0',
    reason: "at i = 0 both give '' (path.slice(0, 0))",
  },
  {
    file: 'src/planner/graph.ts',
    line: 250,
    column: 51,
    mutator: 'ArrayDeclaration',
    reason:
      'the made-up offer has no `to`, and needsEdges(undefined) is false: it is skipped like no offer',
  },
  {
    file: 'src/planner/graph.ts',
    line: 252,
    column: 43,
    mutator: 'ConditionalExpression',
    reason: V8_SORT,
  },
  {
    file: 'src/planner/graph.ts',
    line: 252,
    column: 43,
    mutator: 'EqualityOperator',
    reason: V8_SORT,
  },
  {
    file: 'src/planner/graph.ts',
    line: 284,
    column: 5,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'for `custom !== undefined` alone: Number.isFinite(undefined) is false, so undefined still falls back (the wider `… && Number.isFinite(custom)` → true is killed: Infinity)',
  },
  {
    file: 'src/planner/graph.ts',
    line: 286,
    column: 9,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: 'estimateDiffSize(to, null, stats) is estimateFullSize(to, stats)',
  },
  {
    file: 'src/planner/graph.ts',
    line: 352,
    mutator: 'ArrayDeclaration',
    reason: 'the array is filled index by index right after',
  },
  {
    file: 'src/planner/graph.ts',
    line: 353,
    mutator: 'ArrayDeclaration',
    reason: 'the array is filled index by index right after',
  },
  {
    file: 'src/planner/graph.ts',
    line: 373,
    column: 11,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'for `v.parentUuid !== undefined` alone: index.has(undefined) is false (the wider mutant, `… && index.has(…)` → true, is killed)',
  },
  {
    file: 'src/planner/min-heap.ts',
    line: 39,
    column: 25,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: 'the planner pushes no undefined items, so `last` is defined whenever items remain',
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 75,
    column: 29,
    mutator: 'EqualityOperator',
    reason: ONLY_IF_EQUAL,
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 78,
    column: 33,
    mutator: 'EqualityOperator',
    reason: ONLY_IF_EQUAL,
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 79,
    column: 12,
    mutator: 'EqualityOperator',
    replacement: 'ea.from <= eb.from',
    reason:
      'equal to and from would be the same edge (keys are unique), and each edge enters the queue once',
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 84,
    column: 11,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      "an edge into an attached node only adds a queue item the loop skips (`attached(edge.to)`); the order of the others is the comparator's",
  },
  { file: 'src/planner/plan-search.ts', line: 138, mutator: 'BooleanLiteral', reason: PASSES_IDLE },
  {
    file: 'src/planner/plan-search.ts',
    line: 140,
    column: 11,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'a present or detached node has cost 0, no children and costs are never negative, so no in-edge lowers its cost',
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 146,
    column: 9,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: PASSES_IDLE,
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 153,
    column: 19,
    mutator: 'EqualityOperator',
    replacement: 'v <= g.nodes.length',
    reason: 'the extra index reads parentEdge[n], undefined, which `pe >= 0` skips',
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 171,
    column: 9,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason:
      'the current edge, recomputed with the same inputs, costs exactly cost[v] (and its subtree delta is 0): delta 0 is not below -eps',
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 173,
    column: 9,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'for `e.from >= 0` alone: for a full send parentEdge[-1] is undefined, not DETACHED, so nothing more is skipped (the whole test → true is killed)',
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 179,
    column: 9,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: 'for `e.from >= 0` alone: isAncestor(t, v, -1) is false (its walk starts below 0)',
  },
  {
    file: 'src/planner/plan-search.ts',
    line: 177,
    column: 9,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'without a diff-storing destination an edge cost does not depend on the chain, so the subtree delta is exactly 0',
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 45,
    column: 19,
    mutator: 'EqualityOperator',
    replacement: 'i <= g.nodes.length',
    reason: 'needed[n] is undefined, not 1',
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 68,
    column: 12,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: 'edges[-1] and edges[-2] are undefined as well',
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 95,
    column: 21,
    mutator: 'LogicalOperator',
    reason: NEEDED_WALK,
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 95,
    column: 21,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: NEEDED_WALK,
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 95,
    column: 31,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: NEEDED_WALK,
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 114,
    column: 15,
    mutator: 'EqualityOperator',
    reason: 'two distinct nodes never compare equal (their UUIDs differ)',
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 129,
    mutator: 'OptionalChaining',
    reason:
      'e is undefined only for a present node, which the left side already decided (detached nodes are never needed)',
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 132,
    column: 16,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: 'a needed node that is not present has an edge',
  },
  {
    file: 'src/planner/plan-sync.ts',
    line: 172,
    column: 16,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'both ends of every stored diff are nodes (graphNodes adds them), so node is never undefined',
  },
  { file: 'src/planner/retention.ts', line: 84, mutator: 'LogicalOperator', reason: KEEP_REGEX },
  {
    file: 'src/planner/retention.ts',
    line: 84,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: KEEP_REGEX,
  },
  {
    file: 'src/planner/retention.ts',
    line: 125,
    column: 29,
    mutator: 'EqualityOperator',
    replacement: 'm.index > best.start',
    reason:
      "two valid dates never start at one index: one pattern's matches do not overlap, and a dashed and a compact date differ at their 5th character",
  },
  {
    file: 'src/planner/retention.ts',
    line: 134,
    column: 40,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: 'day 00 becomes the last day of the month before, which fails the getUTCDate() check',
  },
  {
    file: 'src/planner/retention.ts',
    line: 134,
    column: 49,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: 'hours 24–99 carry into one of the next 4 days, which fails the getUTCDate() check',
  },
  {
    file: 'src/planner/retention.ts',
    line: 187,
    mutator: 'ConditionalExpression',
    reason: 'a series has at least one snapshot',
  },
  {
    file: 'src/planner/retention.ts',
    line: 192,
    mutator: 'ConditionalExpression',
    reason: RULE_SKIP,
  },
  { file: 'src/planner/retention.ts', line: 192, mutator: 'LogicalOperator', reason: RULE_SKIP },
  { file: 'src/planner/retention.ts', line: 192, mutator: 'EqualityOperator', reason: RULE_SKIP },
  {
    file: 'src/planner/retention.ts',
    line: 207,
    column: 43,
    mutator: 'EqualityOperator',
    replacement: 'a.item.path <= b.item.path',
    reason: DISTINCT_PATHS,
  },
  {
    file: 'src/planner/retention.ts',
    line: 239,
    column: 27,
    mutator: 'EqualityOperator',
    replacement: 'a.path <= b.path',
    reason: DISTINCT_PATHS,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 80,
    column: 10,
    mutator: 'EqualityOperator',
    replacement: 'ka <= kb',
    reason:
      'differs only for two diffs with the same key, and the caller (decideRetention) passes each key once',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 80,
    column: 25,
    mutator: 'ConditionalExpression',
    reason: V8_SORT,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 80,
    column: 25,
    mutator: 'EqualityOperator',
    reason: V8_SORT,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 87,
    mutator: 'ArrayDeclaration',
    reason: 'the made-up UUID first in the queue has no diffs from it and is no snapshot',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 94,
    mutator: 'ArrayDeclaration',
    reason: MADE_UP_ENTRY,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 95,
    column: 14,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      "a second full of one snapshot needs a duplicate key (decideRetention passes each key once), and a re-based snapshot never has a stored full (it would be its own chain's base)",
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 101,
    mutator: 'EqualityOperator',
    reason: 'the extra step looks up undefined, which has no diffs',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 103,
    mutator: 'ArrayDeclaration',
    reason: MADE_UP_ENTRY,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 116,
    mutator: 'ArrayDeclaration',
    reason: "chainOf's diffs only mark input diffs as needed; a made-up entry is none of them",
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 118,
    mutator: 'LogicalOperator',
    reason:
      'the walk starts at a snapshot with a chain and each step reaches a parent with one, so it ends at null either way',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 118,
    column: 10,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason:
      'for `at !== null` alone: chains.last.has(null) is false, so the walk still ends at null',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 121,
    column: 9,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: "a planned full's null is no input diff, so it marks nothing needed",
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 135,
    column: 7,
    mutator: 'ConditionalExpression',
    replacement: 'false',
    reason: 'rebaseFor is only asked about snapshots with a chain, which has a base',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 139,
    mutator: 'MethodExpression',
    reason: 'the base is not kept in this branch, so it can never be the one found',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 161,
    mutator: 'MethodExpression',
    replacement: '[...input.keep]',
    reason:
      'for the filter removed: a kept snapshot without a chain gets neither re-base nor note (rebaseFor returns undefined for it); the sort removed is killed',
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 166,
    column: 12,
    mutator: 'EqualityOperator',
    replacement: 'pathOf(a) <= pathOf(b)',
    reason: DISTINCT_PATHS,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 184,
    mutator: 'EqualityOperator',
    reason: "the extra step compares with undefined, which no diff's `to` is",
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 188,
    column: 11,
    mutator: 'ConditionalExpression',
    replacement: 'true',
    reason: "pushes null, which no diff's `to` is",
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 204,
    column: 51,
    mutator: 'EqualityOperator',
    replacement: 'pathOf(a) <= pathOf(b)',
    reason: DISTINCT_PATHS,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 222,
    column: 22,
    mutator: 'EqualityOperator',
    replacement: 'a.path <= b.path',
    reason: DISTINCT_PATHS,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 222,
    column: 45,
    mutator: 'ConditionalExpression',
    reason: V8_SORT,
  },
  {
    file: 'src/planner/retention-plan.ts',
    line: 222,
    column: 45,
    mutator: 'EqualityOperator',
    reason: V8_SORT,
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 136,
    mutator: 'ObjectLiteral',
    reason:
      "the listener is removed when the stage is built, and an AbortSignal fires 'abort' once: `once` changes nothing",
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 136,
    mutator: 'BooleanLiteral',
    reason:
      "the listener is removed when the stage is built, and an AbortSignal fires 'abort' once: `once` changes nothing",
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 194,
    mutator: 'ConditionalExpression',
    reason:
      'collecting a command no pass reads only costs work: the command loop hands it to no pass (its reader list is empty)',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 194,
    mutator: 'EqualityOperator',
    reason:
      'collecting a command no pass reads only costs work: the command loop hands it to no pass (its reader list is empty)',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 195,
    mutator: 'ConditionalExpression',
    reason: 'the parser takes an undefined maxVersion as its default, as when the key is absent',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 196,
    mutator: 'ConditionalExpression',
    reason:
      'the parser takes an undefined maxCommandLength as its default, as when the key is absent',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 207,
    mutator: 'ConditionalExpression',
    reason:
      'recomputing the list every time gives the same list (the passes do not change): only CPU differs',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 223,
    mutator: 'ConditionalExpression',
    reason: 'unreachable: passStage runs one pass and a merge at least two',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 229,
    mutator: 'UnaryOperator',
    reason: 'lastEnd is read only when the parser is right after an END, which set it',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 238,
    mutator: 'ConditionalExpression',
    reason:
      'lastEnd is read only when the parser is right after an END, and the last command seen is then that END',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 253,
    mutator: 'ConditionalExpression',
    reason:
      'when boundary equals offset, releasing up to the boundary is releasing up to the offset',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 253,
    mutator: 'EqualityOperator',
    reason:
      'when boundary equals offset, releasing up to the boundary is releasing up to the offset',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 260,
    mutator: 'ConditionalExpression',
    reason:
      'a CRC engine the parser is given with verify "none" is never used: only the load differs',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 30,
    mutator: 'ConditionalExpression',
    reason: 'only transform stages carry `merging` (pass stages are transforms)',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 46,
    mutator: 'LogicalOperator',
    reason:
      'without a merge function the inner loop breaks at once (a next mergeable stage has another function than undefined) or ends at the last stage',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 46,
    mutator: 'EqualityOperator',
    reason:
      'j reaches stages.length only when every later stage merges; a pipeline ends with a sink, which never does',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 51,
    mutator: 'LogicalOperator',
    reason:
      'a run of one mergeable stage then goes through its merge function: one stream running that one pass, with the same name and result as its own stream',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 51,
    mutator: 'ConditionalExpression',
    reason:
      'a run of one mergeable stage then goes through its merge function: one stream running that one pass, with the same name and result as its own stream',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 51,
    mutator: 'ArithmeticOperator',
    reason:
      'j + i >= 2 differs only for a run of one mergeable stage after the first, which then goes through its merge function: the same stream, name and result as its own',
  },
  {
    file: 'src/btrfs/send-stream/stream-pass.ts',
    line: 226,
    column: 39,
    mutator: 'ConditionalExpression',
    reason:
      'holding every final END until the input ends only delays it: at the end the parser has already required that nothing followed END (requireEnd), and a next stream header releases it as before',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 48,
    column: 30,
    mutator: 'ConditionalExpression',
    reason:
      'every mergeable stage today is a pass stage, with the one merge function: none differs',
  },
  {
    file: 'src/streams/mergeable.ts',
    line: 46,
    column: 21,
    mutator: 'ConditionalExpression',
    reason:
      'the bound is reached only when every later stage merges; a pipeline ends with a sink, which never does, so the loop breaks first',
  },
];
