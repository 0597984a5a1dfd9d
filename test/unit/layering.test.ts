/**
 * The layering rule of eslint.config.js (docs/architecture.md): an import that
 * points up a layer, or sideways to a sibling of the same layer, is a lint
 * error; imports that point down pass. Runs ESLint's Node API on snippets
 * placed at paths inside src/ (the files need not exist).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: repoRoot });

async function layeringErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  assert.ok(result, 'ESLint returned a result');
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering lint rule', () => {
  it('fails a store importing the CLI', async () => {
    const errors = await layeringErrors(
      'src/stores/violation.ts',
      "import { runCli } from '../cli.js';\nexport const x = runCli;\n",
    );
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /src\/stores \(layer 4, stores\) may not import src\/cli\.ts/);
    assert.match(errors[0]!, /a higher layer/);
  });

  it('fails upward imports from nested directories, type-only imports and re-exports', async () => {
    const errors = await layeringErrors(
      'src/stores/ssh/violation.ts',
      [
        "import type { ServeSessionOptions } from '../../server/serve-session.js';",
        "export { sync } from '../../sync.js';",
        'export type T = ServeSessionOptions;',
        '',
      ].join('\n'),
    );
    assert.equal(errors.length, 2, errors.join('\n'));
    assert.match(errors[0]!, /may not import src\/server/);
    assert.match(errors[1]!, /may not import src\/sync\.ts/);
  });

  it('fails a stage importing a store, and a sibling of the same layer', async () => {
    const stage = await layeringErrors(
      'src/stages/violation.ts',
      "export { S3Store } from '../stores/s3/s3-store.js';\n",
    );
    assert.equal(stage.length, 1);
    const sibling = await layeringErrors(
      'src/streams/violation.ts',
      "export type { Plan } from '../planner/plan.js';\n",
    );
    assert.equal(sibling.length, 1);
    assert.match(sibling[0]!, /a sibling in its own layer/);
  });

  it('passes imports that point down or stay inside the module', async () => {
    const errors = await layeringErrors(
      'src/stores/ssh/fine.ts',
      [
        "export { FrameReader } from '../../wire/frame.js';",
        "export type { Store } from '../store.js';",
        "export { BtrfsStore } from '../btrfs/btrfs-store.js';",
        "export { btrfsSend } from '../../stages/btrfs-send.js';",
        "export { ButtersinkError } from '../../errors.js';",
        '',
      ].join('\n'),
    );
    assert.deepEqual(errors, []);
  });
});
