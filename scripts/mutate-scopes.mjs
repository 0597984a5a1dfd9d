// The modules StrykerJS mutates (the ones docs/guarantees.md rests on) and the
// fast unit tests that must kill their mutants; shared by stryker.config.mjs
// and scripts/mutate-tests.mjs. `MUTATE_SCOPE=guard,verify npm run mutate`
// picks scopes; the default is all of them.

/** @type {Record<string, { mutate: string[], tests: string[] }>} */
export const scopes = {
  guard: {
    mutate: ['src/stages/receive-guard.ts'],
    tests: ['test/unit/stages/receive-guard.test.ts'],
  },
  verify: {
    mutate: ['src/stages/stream-verify.ts'],
    tests: ['test/unit/stages/stream-verify.test.ts'],
  },
  codec: {
    mutate: ['src/btrfs/send-stream/*.ts', '!src/btrfs/send-stream/{index,types}.ts'],
    tests: [
      'test/unit/btrfs/send-stream/byte-queue.test.ts',
      'test/unit/btrfs/send-stream/crc.test.ts',
      'test/unit/btrfs/send-stream/parser.test.ts',
      'test/unit/btrfs/send-stream/serialize.test.ts',
      'test/unit/btrfs/send-stream/values.test.ts',
      'test/unit/stages/stream-verify.test.ts',
    ],
  },
  rewrite: {
    mutate: ['src/stages/uuid-rewrite.ts'],
    tests: ['test/unit/stages/uuid-rewrite.test.ts'],
  },
  planner: {
    mutate: ['src/planner/*.ts', '!src/planner/{index,plan-input,synthetic}.ts'],
    tests: [
      'test/unit/planner/cost-model.test.ts',
      'test/unit/planner/estimate.test.ts',
      'test/unit/planner/measure-loop.test.ts',
      'test/unit/planner/plan-sync.test.ts',
      'test/unit/planner/plan.test.ts',
    ],
  },
};
