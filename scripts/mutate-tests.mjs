#!/usr/bin/env node
// Test command for StrykerJS (stryker.config.mjs): runs the unit test files of
// the scopes in $MUTATE_SCOPE in ONE process (node:test without --test, tsx
// loaded by the caller), so each mutant costs one Node start-up, not one per
// file; the bail reporter given by the caller exits at the first failure. The
// named tests of an integration file run after them in a child process. Exits
// non-zero when a test fails, which is how Stryker sees a kill.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { after } from 'node:test';
import { pathToFileURL } from 'node:url';
import { scopes, selectedScopes } from './mutate-scopes.mjs';

const entries = selectedScopes().flatMap((n) => scopes[n].tests);
for (const t of entries) if (typeof t === 'string') await import(pathToFileURL(resolve(t)).href);

const integration = entries.filter((t) => typeof t !== 'string');
if (integration.length > 0) {
  after(() => {
    if (process.exitCode) return;
    for (const { file, names } of integration) {
      const pattern = names.map((n) => `^${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`).join('|');
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--test-reporter=./scripts/mutate-bail-reporter.mjs',
          `--test-name-pattern=${pattern}`,
          file,
        ],
        { stdio: 'inherit', env: { ...process.env, BUTTERSINK_REQUIRE_INTEGRATION: '1' } },
      );
      if (r.status !== 0) {
        process.stderr.write(`killed by: ${file} (${r.status ?? r.signal})\n`);
        process.exit(1);
      }
    }
  });
}
