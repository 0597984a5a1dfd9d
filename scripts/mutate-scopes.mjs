// The modules StrykerJS mutates (the ones docs/guarantees.md rests on) and the
// tests that must kill their mutants; shared by stryker.config.mjs,
// scripts/mutate-tests.mjs and scripts/mutate-all.mjs. `MUTATE_SCOPE=guard,verify
// npm run mutate` picks scopes; the default is all of them. A test entry is a
// unit test file (run in the test process) or `{ file, names }`: an
// integration test file of which only the named tests run, in a child process
// (root, btrfs; BUTTERSINK_REQUIRE_INTEGRATION=1).
import { readFileSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * `file:first-last` lines of the block of `file` that starts at the line
 * holding `from` and ends at the first line after it holding `to`; each must
 * occur once, so a block that moved or changed is re-pointed, not silently
 * skipped or widened.
 * @param {string} file @param {string} from @param {string} to
 */
function blockOf(file, from, to) {
  const lines = readFileSync(ROOT + file, 'utf8').split('\n');
  const at = (text, start) => {
    const hits = lines.flatMap((l, i) => (i >= start && l.includes(text) ? [i] : []));
    if (hits.length === 0) throw new Error(`mutate-scopes: ${JSON.stringify(text)} not in ${file}`);
    return hits[0];
  };
  const first = at(from, 0);
  if (lines.filter((l) => l.includes(from)).length !== 1)
    throw new Error(`mutate-scopes: ${JSON.stringify(from)} occurs more than once in ${file}`);
  return `${file}:${first + 1}-${at(to, first) + 1}`;
}

/**
 * @typedef {string | { file: string, names: string[] }} TestEntry
 * @type {Record<string, { what: string, mutate: string[], tests: TestEntry[] }>}
 */
export const scopes = {
  verify: {
    what: 'stream verification: stream-verify stage and CRC-32C',
    mutate: ['src/stages/stream-verify.ts', 'src/btrfs/send-stream/crc.ts'],
    tests: ['test/unit/btrfs/send-stream/crc.test.ts', 'test/unit/stages/stream-verify.test.ts'],
  },
  guard: {
    what: 'receive guard, server path confinement, no-follow file access',
    mutate: ['src/stages/receive-guard.ts', 'src/server/safe-path.ts', 'src/stores/no-follow.ts'],
    tests: [
      'test/unit/stages/receive-guard.test.ts',
      'test/unit/stages/receive-guard-parent.test.ts',
      'test/unit/stages/receive-guard-first.test.ts',
      'test/unit/stages/receive-guard-rules.test.ts',
      'test/unit/stages/receive-guard-verify.test.ts',
      'test/unit/server/safe-path.test.ts',
      'test/unit/server/safe-path-edges.test.ts',
      'test/unit/server/safe-path-dotdot.test.ts',
      'test/unit/stores/no-follow.test.ts',
      'test/unit/stores/no-follow-fds.test.ts',
    ],
  },
  commit: {
    what: 'commit paths: commitSink and the BtrfsStore .part check + rename',
    // A getter: in Stryker's sandbox the file is instrumented and the text not found.
    get mutate() {
      return [
        'src/streams/commit-sink.ts',
        blockOf(
          'src/stores/btrfs/btrfs-store.ts',
          'commit: async (received) => {',
          'return { path: final };',
        ),
        // The checks that commit runs (read-only, received UUID, parent).
        blockOf(
          'src/stores/btrfs/btrfs-store.ts',
          'async function checkReceived(',
          'True when something is at `path`, a dangling symlink included.',
        ),
      ];
    },
    tests: [
      'test/unit/streams/commit-sink.test.ts',
      {
        file: 'test/integration/sync-guards.test.ts',
        names: [
          'BtrfsStore leaves a stream whose received UUID is not the announced one as .part, never under its name',
        ],
      },
      {
        file: 'test/integration/btrfs-commit.test.ts',
        names: [
          'BtrfsStore commits untrusted full and incremental streams under their names, on the parent they were built on',
          'BtrfsStore leaves an incremental that btrfs receive built on another subvolume than the pinned parent copy as .part',
        ],
      },
    ],
  },
  codec: {
    what: 'send-stream codec (parser, serializer, values, byte queue, tree, describe)',
    mutate: [
      'src/btrfs/send-stream/*.ts',
      '!src/btrfs/send-stream/{index,types,crc,stream-pass}.ts',
    ],
    tests: [
      'test/unit/btrfs/send-stream/byte-queue.test.ts',
      'test/unit/btrfs/send-stream/byte-queue-bounds.test.ts',
      'test/unit/btrfs/send-stream/values.test.ts',
      'test/unit/btrfs/send-stream/values-edges.test.ts',
      'test/unit/btrfs/send-stream/serialize.test.ts',
      'test/unit/btrfs/send-stream/parser.test.ts',
      'test/unit/stages/stream-verify.test.ts',
    ],
  },
  pass: {
    what: 'one parse for adjacent parsing stages: the pass runner and the merging of stages',
    mutate: ['src/btrfs/send-stream/stream-pass.ts', 'src/streams/mergeable.ts'],
    tests: [
      'test/unit/stages/shared-parse.test.ts',
      'test/unit/stages/stream-verify.test.ts',
      'test/unit/stages/uuid-rewrite.test.ts',
      'test/unit/stages/uuid-rewrite-pin.test.ts',
      'test/unit/stages/receive-guard.test.ts',
      'test/unit/stages/receive-guard-rules.test.ts',
      'test/unit/stages/receive-guard-verify.test.ts',
      'test/unit/streams/pipeline.test.ts',
    ],
  },
  rewrite: {
    what: 'uuid-rewrite stage',
    mutate: ['src/stages/uuid-rewrite.ts'],
    tests: ['test/unit/stages/uuid-rewrite.test.ts', 'test/unit/stages/uuid-rewrite-pin.test.ts'],
  },
  planner: {
    what: 'planner: diff graph, plan search, cost model, estimates, retention (not perf.test.ts: timing)',
    mutate: ['src/planner/*.ts', '!src/planner/{index,plan-input,synthetic}.ts'],
    tests: [
      'test/unit/planner/cost-model.test.ts',
      'test/unit/planner/estimate.test.ts',
      'test/unit/planner/graph.test.ts',
      'test/unit/planner/measure-loop.test.ts',
      'test/unit/planner/min-heap.test.ts',
      'test/unit/planner/plan-search.test.ts',
      'test/unit/planner/plan-sync.test.ts',
      'test/unit/planner/plan.test.ts',
      'test/unit/planner/retention.test.ts',
      'test/unit/planner/retention-plan.test.ts',
    ],
  },
};

/**
 * The scopes named in $MUTATE_SCOPE (comma-separated; default all), checked.
 * @returns {string[]}
 */
export function selectedScopes() {
  const names = (process.env.MUTATE_SCOPE ?? Object.keys(scopes).join(','))
    .split(',')
    .filter((s) => s !== '');
  for (const n of names) {
    if (!scopes[n])
      throw new Error(`unknown MUTATE_SCOPE ${n}: choose from ${Object.keys(scopes).join(', ')}`);
  }
  return names;
}
