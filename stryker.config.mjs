// StrykerJS: mutation score of the modules the guarantees rest on
// (docs/guarantees.md), against their fast unit tests (and, for the commit
// scope, one named integration test). `npm run mutate:all` runs every scope
// incrementally and writes bench/MUTATION.md (scripts/mutate-all.mjs);
// `MUTATE_SCOPE=guard,verify npm run mutate` runs some scopes (see
// scripts/mutate-scopes.mjs). The tests use node:test + tsx, so the command
// runner runs scripts/mutate-tests.mjs once per mutant (no per-test coverage),
// with a reporter that stops at the first failing test.
import { scopes, selectedScopes } from './scripts/mutate-scopes.mjs';

const names = selectedScopes();
const id = names.join('-');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'command',
  commandRunner: {
    command:
      'node --import tsx --test-reporter=./scripts/mutate-bail-reporter.mjs scripts/mutate-tests.mjs',
  },
  coverageAnalysis: 'off',
  // MUTATE_ONLY=file,file: a sample of the scope's files (bench/MUTATION.md says so).
  mutate: process.env.MUTATE_ONLY
    ? process.env.MUTATE_ONLY.split(',')
    : names.flatMap((n) => scopes[n].mutate),
  ignorePatterns: ['dist', 'reports', '.stryker-tmp', 'bench'],
  // 2 cores shared with other work: one mutant at a time unless told otherwise.
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 1),
  // A hang costs the whole timeout: keep it short (net test time × 1.25 + 4 s).
  timeoutMS: 4_000,
  timeoutFactor: 1.25,
  // Error message texts are not what the guarantees rest on (tests check codes and facts).
  mutator: { excludedMutations: ['StringLiteral'] },
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: `reports/mutation/${id}.json` },
  incrementalFile: `reports/mutation/${id}.incremental.json`,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
