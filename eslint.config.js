// @ts-check
import js from '@eslint/js';
import { readdirSync } from 'node:fs';
import { dirname, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, lowest first (docs/architecture.md). A module may import
 * its own files and any module of a LOWER layer; never a module of its own
 * layer (siblings stay independent) nor of a higher one. Paths are relative to
 * the repository; a directory stands for everything below it.
 */
export const LAYERS = [
  { name: 'core', modules: [['src/errors.ts', 'src/log.ts', 'src/format.ts']] },
  { name: 'framework and pure logic', modules: ['src/streams', 'src/planner'] },
  { name: 'tool wrappers', modules: ['src/btrfs', 'src/s3'] },
  { name: 'stages and wire protocol', modules: ['src/stages', 'src/wire'] },
  { name: 'stores', modules: ['src/stores'] },
  {
    name: 'commands',
    modules: [
      'src/server',
      ['src/sync.ts', 'src/retention'],
      'src/btrfslist.ts',
      'src/checksumdir',
    ],
  },
  { name: 'entry points', modules: [['src/cli.ts', 'src/cli'], 'src/index.ts'] },
  { name: 'executables', modules: ['src/bin'] },
];

const root = dirname(fileURLToPath(import.meta.url));

/** Every module as { paths, layer, name }. */
const modules = LAYERS.flatMap((layer, rank) =>
  layer.modules.map((m) => {
    const paths = Array.isArray(m) ? m : [m];
    return { paths, rank, layer: layer.name, name: paths.join(' + ') };
  }),
);

/**
 * The module `path` (a file or directory below src/) belongs to.
 * @param {string} path
 */
function moduleOf(path) {
  const found = modules.find((m) => m.paths.some((p) => path === p || path.startsWith(`${p}/`)));
  if (!found) {
    throw new Error(`eslint.config.js: ${path} is in no layer; add it to LAYERS`);
  }
  return found;
}

/**
 * Every .ts file below `dir`, repository-relative with `/`.
 * @param {string} dir
 * @returns {string[]}
 */
function tsFiles(dir) {
  return readdirSync(`${root}/${dir}`, { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

const escape = (/** @type {string} */ s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * One `no-restricted-imports` block per directory and module: a pattern for
 * each module the files there may not import, written as the relative
 * specifier it would take from that directory (`../../server/…`,
 * `../../cli.js`), since the rule matches specifiers, not resolved paths.
 */
function layeringBlocks() {
  const groups = new Map();
  for (const file of tsFiles('src')) {
    const dir = posix.dirname(file);
    const mod = moduleOf(file);
    const key = `${dir}|${mod.name}`;
    const group = groups.get(key) ?? { dir, mod, files: new Set() };
    // A module that is a directory takes every file of `dir`, new ones included.
    const isDirModule = mod.paths.some((p) => !p.endsWith('.ts') && file.startsWith(`${p}/`));
    group.files.add(isDirModule ? `${dir}/*.ts` : file);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ dir, mod, files }) => {
    const patterns = modules
      .filter((t) => t !== mod && t.rank >= mod.rank)
      .flatMap((t) =>
        t.paths.map((p) => {
          let spec = relative(dir, p).split('\\').join('/');
          if (!spec.startsWith('.')) spec = `./${spec}`;
          const regex = p.endsWith('.ts')
            ? `^${escape(spec.slice(0, -3))}\\.js$`
            : `^${escape(spec)}(/|$)`;
          const why = t.rank === mod.rank ? 'a sibling in its own layer' : 'a higher layer';
          return {
            regex,
            message: `${mod.name} (layer ${mod.rank}, ${mod.layer}) may not import ${p} (layer ${t.rank}, ${t.layer}): ${why}. Imports point down only; see docs/architecture.md.`,
          };
        }),
      );
    return {
      files: [...files],
      rules: { 'no-restricted-imports': ['error', { patterns }] },
    };
  });
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  ...layeringBlocks(),
  {
    // Blank lines and comments are free: a function's TSDoc and its one-line
    // "why"s should never be what pushes it over.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': [
        'error',
        { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
