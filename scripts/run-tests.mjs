#!/usr/bin/env node
// Runs node's built-in test runner over every *.test.ts below the given folders
// (default: test/unit and test/integration), with tsx for TypeScript. Node 20's
// `--test` takes no globs, so the files are listed here.
//
// Output: by default a short report: one character per test while it runs
// (. passed, F failed, s skipped), then the counts and each failure with its
// file, name and error. The full TAP stream instead with `--tap` (npm test --
// --tap) or TAP=1, or any `--test-reporter` given. The exit status is the
// runner's: non-zero when any test failed.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const args = process.argv.slice(2);
const tap = args.includes('--tap') || process.env.TAP === '1';
const roots = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-') && a !== '--tap');
/** @param {string} dir @returns {string[]} */
function find(dir) {
  if (statSync(dir).isFile()) return [dir];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}
const files = (roots.length ? roots : ['test/unit', 'test/integration']).flatMap(find).sort();
const full = tap || flags.some((f) => f.startsWith('--test-reporter'));
const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    ...(full ? [] : ['--test-reporter=tap']),
    ...flags,
    ...files,
  ],
  { stdio: ['inherit', full ? 'inherit' : 'pipe', 'inherit'] },
);
if (!full) summarize(child.stdout);
child.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

/**
 * Reads the TAP stream and prints the short report. A failure is a `not ok`
 * whose YAML block does not say `subtestsFailed` (a suite failing because of
 * its tests is not reported twice); its name is the path of subtest names.
 * @param {import('node:stream').Readable} tapStream
 */
function summarize(tapStream) {
  const names = []; // subtest names by nesting depth
  const counts = {};
  const failures = [];
  let open; // the failure whose YAML block is being read
  let column = 0;
  const mark = (c) => {
    process.stdout.write(c + (++column % 80 === 0 ? '\n' : ''));
  };
  const lines = createInterface({ input: tapStream });
  lines.on('line', (line) => {
    const depth = (line.match(/^ */)?.[0].length ?? 0) / 4;
    const text = line.trim();
    const subtest = /^# Subtest: (.*)$/.exec(text);
    if (subtest) names[depth] = subtest[1];
    const result = /^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO).*)?$/.exec(text);
    if (result && !line.startsWith('#')) {
      names.length = depth + 1;
      names[depth] = result[2];
      open = result[1] === 'not ok' ? { name: names.join(' > '), yaml: [], depth } : undefined;
      if (result[1] === 'ok') mark(result[3] ? 's' : '.');
      return;
    }
    if (open) {
      if (text === '...') {
        const yaml = open.yaml.join('\n');
        if (!/failureType: 'subtestsFailed'/.test(yaml)) {
          failures.push(open);
          mark('F');
        }
        open = undefined;
      } else if (text !== '---') open.yaml.push(line.slice(open.depth * 4 + 2));
      return;
    }
    const count = /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) (\S+)$/.exec(
      line,
    );
    if (count) counts[count[1]] = Number(count[2]);
  });
  lines.on('close', () => report(counts, failures));
}

/** Prints the counts and each failure (file, name, error lines). */
function report(counts, failures) {
  const seconds = Math.round((counts.duration_ms ?? 0) / 1000);
  process.stdout.write(
    `\n\ntests ${counts.tests ?? 0}: ${counts.pass ?? 0} passed, ${counts.fail ?? 0} failed, ` +
      `${counts.skipped ?? 0} skipped, ${counts.todo ?? 0} todo, ${counts.cancelled ?? 0} cancelled ` +
      `(${seconds} s)\n`,
  );
  if (failures.length === 0) return;
  process.stdout.write(`\nFAILED (${failures.length}):\n`);
  for (const f of failures) {
    const location = /location: '([^']*?):\d+:\d+'/.exec(f.yaml.join('\n'))?.[1];
    const file = location ? relative(process.cwd(), location) : '?';
    process.stdout.write(`\n  ${file}: ${f.name}\n`);
    // The error and what was expected and found; not the stack (npm test -- --tap has it).
    const from = f.yaml.findIndex((l) => /^error:/.test(l));
    const to = f.yaml.findIndex((l) => /^stack:/.test(l));
    const detail = f.yaml
      .slice(Math.max(0, from), to < 0 ? undefined : to)
      .filter((l) => !/^(code|name|operator):/.test(l))
      .slice(0, 25);
    for (const l of detail) process.stdout.write(`    ${l}\n`);
  }
  process.stdout.write('\nthe full TAP output: npm test -- --tap (or TAP=1)\n');
}
