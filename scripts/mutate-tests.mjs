#!/usr/bin/env node
// Test command for StrykerJS (stryker.config.mjs): runs the unit test files of
// the scope in $MUTATE_SCOPE in ONE process (node:test without --test, tsx
// loaded by the caller), so each mutant costs one Node start-up, not one per
// file. Exits non-zero when a test fails, which is how Stryker sees a kill.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { scopes } from './mutate-scopes.mjs';

const names = (process.env.MUTATE_SCOPE ?? Object.keys(scopes).join(','))
  .split(',')
  .filter((s) => s !== '');
for (const name of names) {
  const scope = scopes[name];
  if (!scope)
    throw new Error(`unknown MUTATE_SCOPE ${name}: choose from ${Object.keys(scopes).join(', ')}`);
  for (const f of scope.tests) await import(pathToFileURL(resolve(f)).href);
}
