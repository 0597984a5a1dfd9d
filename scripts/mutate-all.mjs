#!/usr/bin/env node
// Runs StrykerJS over every mutation scope (scripts/mutate-scopes.mjs), one at
// a time, incrementally, and writes bench/MUTATION.md from the JSON reports.
//
// Incremental: each scope keeps reports/mutation/<scope>.incremental.json.
// The command test runner reports no per-test coverage, so Stryker cannot see
// that a test was added; before each run this script drops the surviving and
// uncovered mutants from that file, so they are tested again while killed and
// timed-out ones are reused as long as their source text is unchanged.
// `--force` retests everything; `--report` only rewrites bench/MUTATION.md.
// MUTATE_ONLY=src/a.ts,src/b.ts mutates only those files of the scope (a
// sample, noted in MUTATION.md).
//
// Usage: node scripts/mutate-all.mjs [--force] [--report] [scope…]
//   (npm run mutate:all -- …); default: every scope, or $MUTATE_SCOPE.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';
import { equivalent } from './mutate-equivalent.mjs';
import { scopes, selectedScopes } from './mutate-scopes.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const force = args.includes('--force');
const reportOnly = args.includes('--report');
const named = args.filter((a) => !a.startsWith('--'));
if (named.length > 0) process.env.MUTATE_SCOPE = named.join(',');
const names = selectedScopes();

const jsonOf = (scope) => `${ROOT}reports/mutation/${scope}.json`;
const runOf = (scope) => `${ROOT}reports/mutation/${scope}.run.json`;
const incrementalOf = (scope) => `${ROOT}reports/mutation/${scope}.incremental.json`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Drops survived and uncovered mutants from a scope's incremental file. */
function pruneIncremental(scope) {
  const file = incrementalOf(scope);
  if (!existsSync(file)) return;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  // With MUTATE_ONLY, only those files are retested: keep the others' survivors.
  const only = process.env.MUTATE_ONLY?.split(',');
  for (const [name, f] of Object.entries(report.files)) {
    if (only && !only.some((o) => name.endsWith(o))) continue;
    f.mutants = f.mutants.filter((m) => m.status === 'Killed' || m.status === 'Timeout');
  }
  writeFileSync(file, JSON.stringify(report));
}

if (!reportOnly) {
  for (const scope of names) {
    const started = new Date();
    const loadBefore = load();
    if (!force) pruneIncremental(scope);
    const r = spawnSync('npx', ['stryker', 'run', ...(force ? ['--force'] : []), '--incremental'], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, MUTATE_SCOPE: scope },
    });
    if (r.status !== 0) {
      process.stderr.write(
        `mutate-all: stryker failed for scope ${scope} (${r.status ?? r.signal})\n`,
      );
      process.exit(1);
    }
    const run = {
      started: started.toISOString().slice(0, 16).replace('T', ' '),
      minutes: ((Date.now() - started.getTime()) / 60_000).toFixed(1),
      load: `${loadBefore} → ${load()}`,
      ...(process.env.MUTATE_ONLY ? { only: process.env.MUTATE_ONLY.split(',') } : {}),
    };
    writeFileSync(runOf(scope), JSON.stringify(run));
  }
}
/** Killed, survived, … of a list of mutants; score as Stryker computes it. */
function count(mutants) {
  const c = { mutants: 0, killed: 0, survived: 0, timeout: 0, noCoverage: 0, errors: 0 };
  for (const m of mutants) {
    if (m.status === 'Ignored') continue;
    c.mutants++;
    if (m.status === 'Killed') c.killed++;
    else if (m.status === 'Survived') c.survived++;
    else if (m.status === 'Timeout') c.timeout++;
    else if (m.status === 'NoCoverage') c.noCoverage++;
    else c.errors++;
  }
  const valid = c.killed + c.timeout + c.survived + c.noCoverage;
  c.score = valid === 0 ? '—' : `${((100 * (c.killed + c.timeout)) / valid).toFixed(2)} %`;
  return c;
}

const row = (name, c) =>
  `| ${name} | ${c.mutants} | ${c.killed} | ${c.survived} | ${c.timeout} | ${c.noCoverage} | ${c.errors} | ${c.score} |`;

/** How scripts/mutate-equivalent.mjs explains a surviving mutant, if it lists it. */
function equivalentReason(file, m) {
  const hit = equivalent.find(
    (e) =>
      e.file === file &&
      e.line === m.location.start.line &&
      (e.column === undefined || e.column === m.location.start.column) &&
      e.mutator === m.mutatorName &&
      (e.replacement === undefined || (m.replacement ?? '').startsWith(e.replacement)),
  );
  if (!hit) return undefined;
  return hit.open ? `*not killed yet*: ${hit.reason}` : `*equivalent*: ${hit.reason}`;
}

const MD = `${ROOT}bench/MUTATION.md`;
const previous = existsSync(MD) ? readFileSync(MD, 'utf8') : '';

/**
 * A scope with no JSON report here (reports/ is not in git: a fresh checkout
 * has none) keeps its summary row and section from the bench/MUTATION.md being
 * replaced, marked as carried over with the date it was written, instead of
 * dropping to "not run". Undefined when that file has no results for it.
 */
function carriedOver(scope) {
  const lines = previous.split('\n');
  const row = lines.find(
    (l) => l.startsWith(`| ${scope} |`) || l.startsWith(`| ${scope} (carried over) |`),
  );
  const start = lines.findIndex((l) => l.startsWith(`## ${scope}: `));
  if (!row || row.includes('| not run |') || start < 0) return undefined;
  let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  if (end < 0) end = lines.length;
  const section = lines.slice(start, end);
  const written = /^Written (.*? UTC)\./m.exec(previous)?.[1] ?? 'earlier';
  if (!section.some((l) => l.startsWith('*Carried over*'))) {
    section.splice(
      2,
      0,
      `*Carried over*: not rerun for the file written ${written}; copied from it as it was. Code or tests changed since show in \`git log\`; this run's scopes are the ones without this note.`,
      '',
    );
  }
  return { row: row.replace(`| ${scope} |`, `| ${scope} (carried over) |`), section };
}

function render() {
  const out = [
    '# Mutation score',
    '',
    'Generated by `npm run mutate:all` (scripts/mutate-all.mjs) from StrykerJS JSON reports',
    '(reports/mutation/<scope>.json); do not edit. Scopes, mutated files and the tests run',
    'against each mutant: scripts/mutate-scopes.mjs. StringLiteral mutants are excluded (error',
    'texts are not what the guarantees rest on) and not counted. Score = (killed + timeout) /',
    '(killed + timeout + survived + no coverage), as Stryker computes it; "timeout": the tests',
    'did not finish within the limit (a hang the mutant caused; also more likely under load),',
    'counted as detected; "errors": mutants that do not compile or crash at load (not counted).',
    'Survivors are explained from scripts/mutate-equivalent.mjs: *equivalent* (cannot change',
    'behaviour) or *not killed yet* (what a test would need). Either way they are counted as survived.',
    'A scope marked "(carried over)" was not rerun: its row and section are copied from the file this',
    'one replaced (reports/ is not in git), with the date they were written.',
    '',
    `Written ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Machine: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), Node ${process.version}, concurrency ${process.env.MUTATE_CONCURRENCY ?? 1}.`,
    '',
  ];
  const summary = [
    '| scope | mutants | killed | survived | timeout | no coverage | errors | score |',
  ];
  summary.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const details = [];
  // Every scope with a report, not only the ones run now: the file shows them all.
  for (const scope of Object.keys(scopes)) {
    const file = jsonOf(scope);
    if (!existsSync(file)) {
      const kept = carriedOver(scope);
      if (kept) {
        summary.push(kept.row);
        details.push(...kept.section);
      } else {
        summary.push(`| ${scope} | not run | | | | | | |`);
      }
      continue;
    }
    const report = JSON.parse(readFileSync(file, 'utf8'));
    const files = Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b));
    const all = files.flatMap(([, f]) => f.mutants);
    summary.push(row(scope, count(all)));
    const run = existsSync(runOf(scope))
      ? JSON.parse(readFileSync(runOf(scope), 'utf8'))
      : undefined;
    details.push(`## ${scope}: ${scopes[scope].what}`, '');
    details.push(
      run
        ? `Last run ${run.started} UTC, ${run.minutes} min, load average (1/5/15 min) ${run.load}; incremental: killed and timed-out results of earlier runs on unchanged code are reused, survivors retested.`
        : 'Run by hand (`npm run mutate`), not by mutate-all: time and load not recorded.',
      '',
      ...(run?.only
        ? [
            '**Sample** (MUTATE_ONLY): only the files in the table below were mutated, not the whole scope.',
            '',
          ]
        : []),
      `Mutated: ${scopes[scope].mutate.map((m) => `\`${m}\``).join(', ')}. Tests: ${scopes[
        scope
      ].tests
        .map((t) =>
          typeof t === 'string' ? `\`${t}\`` : `\`${t.file}\` (${t.names.length} named)`,
        )
        .join(', ')}.`,
      '',
    );
    details.push('| file | mutants | killed | survived | timeout | no coverage | errors | score |');
    details.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, f] of files) details.push(row(name, count(f.mutants)));
    details.push('');
    const survivors = files.flatMap(([name, f]) =>
      f.mutants
        .filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')
        .map((m) => ({ name, m })),
    );
    survivors.sort((a, b) =>
      a.name === b.name
        ? a.m.location.start.line - b.m.location.start.line
        : a.name.localeCompare(b.name),
    );
    if (survivors.length === 0) {
      details.push('No surviving mutant.', '');
      continue;
    }
    details.push('Surviving mutants:', '');
    for (const { name, m } of survivors) {
      const repl = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 70);
      const why = equivalentReason(name, m);
      details.push(
        `- ${name}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName}` +
          `${m.status === 'NoCoverage' ? ' (no coverage)' : ''} → \`${repl.replace(/`/g, "'")}\`` +
          (why ? ` — ${why}` : ''),
      );
    }
    details.push('');
  }
  return [...out, ...summary, '', ...details].join('\n');
}

writeFileSync(MD, render());
process.stdout.write(`mutate-all: wrote bench/MUTATION.md (${names.join(', ')})\n`);
