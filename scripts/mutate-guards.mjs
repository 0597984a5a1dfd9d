#!/usr/bin/env node
// Deletion experiments for the guards buttersink's promises rest on: for each
// mutation, copy the tree to /tmp (without .git, node_modules and dist;
// node_modules symlinked), apply the mutation's exact string replacements
// (each target text must occur exactly once, or the script stops: a guard that
// moved must be re-pointed, not silently skipped), run the named tests there
// and report which test killed the mutant, or SURVIVED. Exits 1 when any
// mutant survives, 2 when a mutation no longer applies or the unmutated tests
// fail (the baseline, run first: a kill only means something if they pass).
//
// Usage: node scripts/mutate-guards.mjs [--list] [--no-baseline] [id…]
// Needs what the tests need: root, btrfs, sshd and moto_server
// (BUTTERSINK_REQUIRE_INTEGRATION=1 is set, so a missing one fails loudly).
import { spawn } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout, clearTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Per mutant run; a hang counts as a kill only when a test reports it, so tests carry their own deadlines. */
const RUN_TIMEOUT_MS = 20 * 60_000;

/**
 * @typedef {{ file: string, find: string, replace: string }} Edit
 * @typedef {{ file: string, tests: string[], setup?: string[] }} TestSel
 *   `tests`: names of the tests expected to kill the mutant; `setup`: tests
 *   that must run before them in the same file (they prepare state).
 * @typedef {{ id: string, what: string, edits: Edit[], run: TestSel[] }} Mutation
 */

const CORRUPT_SYNC =
  'sync() stops a stream with one flipped data byte with StreamCorruptError before btrfs receive sees it';
const CORRUPT_PUSH =
  "a pushed stream with one flipped data byte is stopped by the server's verification, not by btrfs receive";
const FLIPPED_S3 =
  'a flipped byte in a stored diff: restore fails naming it, nothing complete-looking, scrub reports it';
const WRONG_UUID =
  'BtrfsStore leaves a stream whose received UUID is not the announced one as .part, never under its name';
const WRONG_PARENT =
  'BtrfsStore leaves an incremental that btrfs receive built on another subvolume than the pinned parent copy as .part';
const HOSTILE_BUCKET =
  'restore from a bucket: every hostile diff skipped by its rule, the rest restored, canary untouched';
const HOSTILE_SSH =
  'skips every hostile diff with its rule, receives the legit snapshot, touches nothing outside dest';
const GUARD_TESTS = [
  { file: 'test/integration/receive-guard.test.ts', tests: [HOSTILE_BUCKET] },
  { file: 'test/integration/hostile-ssh-pull.test.ts', tests: [HOSTILE_SSH] },
];

/** @type {Mutation[]} */
const MUTATIONS = [
  {
    id: 'stream-verify',
    what: 'remove streamVerify from the sync pipeline (src/sync.ts transfer())',
    edits: [
      {
        file: 'src/sync.ts',
        find: '...(receive.verifies ? [] : [streamVerify(sig)]),',
        replace: '',
      },
    ],
    run: [{ file: 'test/integration/sync-guards.test.ts', tests: [CORRUPT_SYNC] }],
  },
  {
    id: 'guard-verify',
    what: 'the receive guard of an untrusted stream stops verifying CRCs (BtrfsStore.receive), still claiming it does',
    edits: [
      {
        file: 'src/stores/btrfs/btrfs-store.ts',
        find: '              verify: true,\n',
        replace: '              verify: false,\n',
      },
    ],
    run: [
      { file: 'test/integration/ssh.test.ts', tests: [CORRUPT_PUSH] },
      { file: 'test/integration/s3.test.ts', tests: [FLIPPED_S3] },
    ],
  },
  {
    id: 'commit-check',
    what: 'disable the received-UUID / read-only check before the .part rename (BtrfsStore.receive)',
    edits: [
      {
        file: 'src/stores/btrfs/btrfs-store.ts',
        find: 'if (show.receivedUuid !== to.uuid || !show.readOnly) {',
        replace: 'if (false) {',
      },
    ],
    run: [{ file: 'test/integration/sync-guards.test.ts', tests: [WRONG_UUID] }],
  },
  {
    id: 'commit-check-uuid',
    what: 'drop only the received-UUID comparison before the rename (keep read-only)',
    edits: [
      {
        file: 'src/stores/btrfs/btrfs-store.ts',
        find: 'if (show.receivedUuid !== to.uuid || !show.readOnly) {',
        replace: 'if (!show.readOnly) {',
      },
    ],
    run: [{ file: 'test/integration/sync-guards.test.ts', tests: [WRONG_UUID] }],
  },
  {
    id: 'commit-check-parent',
    what: 'drop the parent check before the rename (an incremental built on another subvolume is committed)',
    edits: [
      {
        file: 'src/stores/btrfs/btrfs-store.ts',
        find: 'if (parent && show.parentUuid !== parent.ownUuid) {',
        replace: 'if (false) {',
      },
    ],
    run: [{ file: 'test/integration/btrfs-commit.test.ts', tests: [WRONG_PARENT] }],
  },
  {
    id: 'guard-store',
    what: 'BtrfsStore.receive: never add the receive guard (treat every stream as trusted)',
    edits: [
      {
        file: 'src/stores/btrfs/btrfs-store.ts',
        find: '      ...(opts.trustedSource\n        ? []\n',
        replace: '      ...(true\n        ? []\n',
      },
    ],
    run: GUARD_TESTS,
  },
  {
    id: 'guard-trust',
    what: 'sync transfer(): call every source trusted (not only local btrfs)',
    edits: [
      {
        file: 'src/sync.ts',
        find: "    trustedSource: source.kind === 'btrfs',\n",
        replace: '    trustedSource: true,\n',
      },
    ],
    run: GUARD_TESTS,
  },
  {
    id: 'guard-stage',
    what: 'receive-guard stage: let every command through unchecked',
    edits: [
      {
        file: 'src/stages/receive-guard.ts',
        find: '      check(ev);\n',
        replace: '      void check;\n',
      },
    ],
    run: GUARD_TESTS,
  },
  {
    id: 's3-copy',
    what: 'S3Store.copyFrom: never copy server-side (sync falls back to download + upload)',
    edits: [
      {
        file: 'src/stores/s3/s3-store.ts',
        find: '    if (!(s3 instanceof S3Store)) return undefined;\n',
        replace: '    if (s3) return undefined;\n',
      },
    ],
    run: [
      {
        file: 'test/integration/s3.test.ts',
        setup: [
          'btrfs → S3 of a chain, then S3 → fresh btrfs: same content, same UUIDs, later incremental applies',
        ],
        tests: [
          'sync S3 → S3 copies every stored diff server-side, byte-identical, with no GetObject of a diff',
        ],
      },
    ],
  },
  {
    id: 'signal-no-kill',
    what: 'btrfs children ignore the abort (no abort signal, kill() a no-op, no kill at exit)',
    edits: [
      {
        file: 'src/btrfs/exec.ts',
        find: "    env: { LC_ALL: 'C' },\n    ...(opts.signal ? { signal: opts.signal } : {}),\n",
        replace: "    env: { LC_ALL: 'C' },\n",
      },
      {
        file: 'src/btrfs/exec.ts',
        find: '      if (!exited) started.kill(signal);\n',
        replace: '      if (!exited && signal === "SIGKILL") started.kill(signal);\n',
      },
      {
        file: 'src/btrfs/child.ts',
        find: "    for (const c of live) c.kill('SIGTERM');\n",
        replace: '    void live;\n',
      },
    ],
    run: [
      {
        file: 'test/integration/sync-btrfs.test.ts',
        tests: ['SIGINT mid-transfer: non-zero exit, no btrfs send/receive left, only a partial'],
      },
    ],
  },
];

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Copies the work tree (sources as they are now, committed or not) to a fresh /tmp dir. */
function copyTree() {
  const dir = mkdtempSync('/tmp/buttersink-mutant-');
  const skip = new Set(['.git', 'node_modules', 'dist']);
  cpSync(ROOT, dir, {
    recursive: true,
    filter: (src) => {
      const rel = relative(ROOT, src);
      return rel === '' || !skip.has(rel.split('/')[0]);
    },
  });
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'));
  return dir;
}

/**
 * Returns the files of `dir` with `edits` applied, without writing them;
 * throws when a target text is missing or not unique.
 */
function editedFiles(dir, edits, id) {
  const files = new Map();
  for (const e of edits) {
    const text = files.get(e.file) ?? readFileSync(join(dir, e.file), 'utf8');
    const n = text.split(e.find).length - 1;
    if (n !== 1) {
      throw new Error(
        `mutation ${id}: expected exactly one occurrence in ${e.file} of ${JSON.stringify(e.find)}, found ${n}`,
      );
    }
    files.set(
      e.file,
      text.replace(e.find, () => e.replace),
    );
  }
  return files;
}

/** Applies `edits` in `dir` (see {@link editedFiles}). */
function applyEdits(dir, edits, id) {
  for (const [file, text] of editedFiles(dir, edits, id)) writeFileSync(join(dir, file), text);
}

/**
 * Runs the selected tests of one file in `dir` (its own process group, killed
 * whole on timeout); resolves with the names of the tests reported `not ok`.
 */
function runTests(dir, sel) {
  const names = [...(sel.setup ?? []), ...sel.tests];
  const pattern = `^(${names.map(escapeRe).join('|')})$`;
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['scripts/run-tests.mjs', `--test-name-pattern=${pattern}`, '--test-reporter=tap', sel.file],
      {
        cwd: dir,
        env: { ...process.env, BUTTERSINK_REQUIRE_INTEGRATION: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, RUN_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const failed = new Set();
      const passed = new Set();
      for (const m of out.matchAll(/^\s*(not ok|ok) \d+ - (.*?)(?: # SKIP.*)?$/gm)) {
        if (!names.includes(m[2])) continue;
        if (/# SKIP/.test(m[0])) continue;
        (m[1] === 'ok' ? passed : failed).add(m[2]);
      }
      resolve({ code, timedOut, failed: [...failed], passed: [...passed], out });
    });
  });
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const m of MUTATIONS) console.log(`${m.id}: ${m.what}`);
    return 0;
  }
  const only = args.filter((a) => !a.startsWith('-'));
  const unknown = only.filter((id) => !MUTATIONS.some((m) => m.id === id));
  if (unknown.length) throw new Error(`unknown mutation(s): ${unknown.join(', ')}`);
  const chosen = MUTATIONS.filter((m) => only.length === 0 || only.includes(m.id));

  // Every mutation must still apply to the current sources before anything runs.
  for (const m of chosen) editedFiles(ROOT, m.edits, m.id);

  if (!args.includes('--no-baseline')) {
    const dir = copyTree();
    try {
      // One run per file, with every test any chosen mutation names in it.
      const sels = new Map();
      for (const m of chosen) {
        for (const s of m.run) {
          const sel = sels.get(s.file) ?? { file: s.file, setup: [], tests: [] };
          for (const t of s.setup ?? []) if (!sel.setup.includes(t)) sel.setup.push(t);
          for (const t of s.tests) if (!sel.tests.includes(t)) sel.tests.push(t);
          sels.set(s.file, sel);
        }
      }
      for (const sel of sels.values()) {
        const r = await runTests(dir, sel);
        const missing = sel.tests.filter((t) => !r.passed.includes(t));
        if (r.code !== 0 || missing.length) {
          console.log(r.out.split('\n').slice(-60).join('\n'));
          console.log(`baseline: ${sel.file} fails without any mutation (${missing.join('; ')})`);
          return 2;
        }
        console.log(`baseline: ${sel.file}: ${sel.tests.length} test(s) pass unmutated`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  let survived = 0;
  for (const m of chosen) {
    const dir = copyTree();
    try {
      applyEdits(dir, m.edits, m.id);
      const killers = [];
      for (const sel of m.run) {
        const r = await runTests(dir, sel);
        const kills = r.failed.filter((t) => sel.tests.includes(t));
        killers.push(...kills.map((t) => `${sel.file} › ${t}`));
        if (r.timedOut)
          killers.push(`${sel.file} (timed out after ${RUN_TIMEOUT_MS / 60_000} min)`);
      }
      if (killers.length) {
        console.log(`mutation ${m.id} (${m.what}): killed by ${killers.join('; ')}`);
      } else {
        survived++;
        console.log(`mutation ${m.id} (${m.what}): SURVIVED`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`${chosen.length - survived} killed, ${survived} survived`);
  return survived > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`mutate-guards: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
