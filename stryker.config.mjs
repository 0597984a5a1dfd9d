// StrykerJS: mutation score of the modules the guarantees rest on
// (docs/guarantees.md), against their fast unit tests. `npm run mutate`;
// `MUTATE_SCOPE=guard,verify npm run mutate` for some scopes (see
// scripts/mutate-scopes.mjs). The tests use node:test + tsx, so the command
// runner runs scripts/mutate-tests.mjs once per mutant (no per-test coverage).
import { scopes } from './scripts/mutate-scopes.mjs';

const names = (process.env.MUTATE_SCOPE ?? Object.keys(scopes).join(','))
  .split(',')
  .filter((s) => s !== '');
for (const n of names) {
  if (!scopes[n])
    throw new Error(`unknown MUTATE_SCOPE ${n}: choose from ${Object.keys(scopes).join(', ')}`);
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'command',
  commandRunner: { command: 'node --import tsx scripts/mutate-tests.mjs' },
  coverageAnalysis: 'off',
  mutate: names.flatMap((n) => scopes[n].mutate),
  ignorePatterns: ['dist', 'reports', '.stryker-tmp', 'bench', 'test/integration'],
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 2),
  timeoutMS: 5_000,
  // Error message texts are not what the guarantees rest on (tests check codes and facts).
  mutator: { excludedMutations: ['StringLiteral'] },
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: `reports/mutation/${names.join('-')}.json` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
