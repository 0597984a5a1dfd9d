/**
 * `buttersink -n --plan-format dot` on real loop-mounted btrfs: stdout is
 * only the DOT text, Graphviz `dot -Tsvg` (Debian package graphviz) parses it,
 * and the picture holds a node per snapshot, in a source and a destination
 * cluster, with the planned diffs as labelled edges. Nothing is written.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { createBtrfs, makeTree, snapshot, subvolume } from '../fixtures/btrfs-fs.js';
import type { BtrfsFs } from '../fixtures/btrfs-fs.js';
import { runCli } from '../fixtures/cli.js';
import { integrationPrereqs, which } from '../fixtures/require-integration.js';

const prereqs = integrationPrereqs({ root: true, btrfs: true });
const skip =
  prereqs.skip || (which('dot') ? false : 'Graphviz dot not installed (apt-get install graphviz)');
if (skip && process.env.BUTTERSINK_REQUIRE_INTEGRATION === '1') throw new Error(skip);

describe('-n --plan-format dot', { skip }, () => {
  let A: BtrfsFs;
  let snaps: string;
  let dst: string;

  before(async () => {
    A = await createBtrfs();
    const live = await subvolume(join(A.mnt, 'live'));
    snaps = join(A.mnt, 'snaps');
    dst = join(A.mnt, 'dst');
    await Promise.all([mkdir(snaps), mkdir(dst)]);
    for (let step = 0; step < 3; step++) {
      await makeTree(live, step, { bigMiB: 1 });
      await snapshot(live, join(snaps, `s${step + 1}`));
    }
    // s1 is already at the destination: the plan sends s2 and s3 incrementally.
    const first = await runCli(['-q', join(snaps, 's1'), `${dst}/`]);
    assert.equal(first.exitCode, 0, first.stderr);
  });
  after(async () => A?.cleanup());

  it('prints DOT that Graphviz renders, with the snapshots as nodes and the diffs as labelled edges', async () => {
    const r = await runCli(['-n', '--plan-format', 'dot', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^digraph buttersink_plan \{/, 'stdout is the graph only');
    assert.match(r.stdout, /\}$/);
    const svg = await execa('dot', ['-Tsvg'], { input: r.stdout, reject: false });
    assert.equal(svg.exitCode, 0, `dot refused it: ${svg.stderr}\n${r.stdout}`);
    assert.equal(svg.stderr, '', 'no warning from dot');
    // The SVG's text elements, numeric entities decoded (dot writes '-' as &#45;).
    const text = [...svg.stdout.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
      m[1]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))),
    );
    for (const label of ['s1', 's2', 's3'])
      assert.ok(text.includes(label), `node ${label} in ${text.join('|')}`);
    assert.ok(text.includes(`source: ${snaps}/`), text.join('|'));
    assert.ok(text.includes(`destination: ${dst}/`), text.join('|'));
    assert.equal(
      text.filter((t) => /^incremental, [\d.]+ (B|KiB|MiB)$/.test(t ?? '')).length,
      2,
      `two incremental diffs with sizes: ${text.join('|')}`,
    );
    assert.match(svg.stdout, /<title>cluster_source<\/title>/);
    assert.match(svg.stdout, /<title>cluster_destination<\/title>/);
    assert.deepEqual(await readdir(dst), ['s1'], 'a dry run: nothing received');
  });

  it('without -n it is refused as a usage error (exit 2), sending nothing', async () => {
    const r = await runCli(['--plan-format', 'dot', `${snaps}/`, `${dst}/`]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /add -n/);
    assert.deepEqual(await readdir(dst), ['s1']);
  });
});
