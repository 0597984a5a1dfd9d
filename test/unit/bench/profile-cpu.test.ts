import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  classify,
  pidOfProfile,
  sourceMapper,
  summarizeCpuProfile,
} from '../../../bench/profile-cpu.js';
import type { CpuProfile } from '../../../bench/profile-cpu.js';
import { withCpuProf } from '../../../bench/profile.js';

const REPO = '/work/repo';
const frame = (functionName: string, url: string, lineNumber = 0) => ({
  functionName,
  url,
  lineNumber,
});

describe('bench CPU profile summary', () => {
  it('sorts call frames into modules: node internals, ssh2, aws-sdk, ours, other packages, V8', () => {
    const c = (name: string, url: string) => classify({ functionName: name, url }, REPO).module;
    assert.equal(c('(idle)', ''), 'idle (waiting for I/O)');
    assert.equal(c('(garbage collector)', ''), 'garbage collector');
    assert.equal(c('(program)', ''), 'V8/native, not JavaScript (program)');
    assert.equal(c('Buffer', ''), 'V8 builtins');
    assert.equal(c('onStreamRead', 'node:internal/stream_base_commons'), 'node internals');
    assert.equal(c('decrypt', `file://${REPO}/node_modules/ssh2/lib/protocol/crypto.js`), 'ssh2');
    assert.equal(
      c('send', `file://${REPO}/node_modules/@aws-sdk/client-s3/dist-cjs/index.js`),
      'aws-sdk',
    );
    assert.equal(c('x', `file://${REPO}/node_modules/@smithy/core/dist-cjs/index.js`), 'aws-sdk');
    assert.equal(c('crc', `file://${REPO}/node_modules/@node-rs/crc32/index.js`), '@node-rs/crc32');
    assert.equal(c('parse', `file://${REPO}/dist/btrfs/send-stream.js`), 'buttersink');
    assert.equal(c('f', 'file:///elsewhere/x.js'), 'other');
    assert.deepEqual(classify(frame('parse', `file://${REPO}/dist/btrfs/send-stream.js`), REPO), {
      module: 'buttersink',
      file: 'dist/btrfs/send-stream.js',
    });
  });

  it('counts self time per function and module from the samples, idle left out of the top list', () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', '') },
        { id: 2, callFrame: frame('(idle)', '') },
        { id: 3, callFrame: frame('parse', `file://${REPO}/dist/btrfs/send-stream.js`, 41) },
        {
          id: 4,
          callFrame: frame('decrypt', `file://${REPO}/node_modules/ssh2/lib/protocol/crypto.js`, 9),
        },
        // The same function reached by another call path: one row.
        { id: 5, callFrame: frame('parse', `file://${REPO}/dist/btrfs/send-stream.js`, 41) },
      ],
      startTime: 0,
      endTime: 10_000, // 10 ms, 10 samples: 1 ms each
      samples: [2, 2, 2, 2, 3, 3, 5, 4, 4, 4],
    };
    const s = summarizeCpuProfile(profile, REPO, 2);
    assert.equal(s.samples, 10);
    assert.equal(s.totalMs, 10);
    assert.equal(s.idlePct, 40);
    assert.deepEqual(s.top, [
      { fn: 'parse dist/btrfs/send-stream.js:42', module: 'buttersink', selfMs: 3, pct: 30 },
      { fn: 'decrypt ssh2/lib/protocol/crypto.js:10', module: 'ssh2', selfMs: 3, pct: 30 },
    ]);
    assert.deepEqual(
      s.modules.map((m) => [m.module, m.selfMs]),
      [
        ['idle (waiting for I/O)', 4],
        ['buttersink', 3],
        ['ssh2', 3],
      ],
    );
  });

  it('falls back to hit counts when a profile has no sample list', () => {
    const s = summarizeCpuProfile(
      {
        nodes: [
          { id: 1, callFrame: frame('a', 'node:fs'), hitCount: 3 },
          { id: 2, callFrame: frame('b', 'node:fs'), hitCount: 1 },
        ],
        startTime: 0,
        endTime: 8000,
      },
      REPO,
    );
    assert.deepEqual(
      s.top.map((f) => [f.fn, f.selfMs, f.pct]),
      [
        ['a fs:1', 6, 75],
        ['b fs:1', 2, 25],
      ],
    );
  });

  it('finds the hot function of a real node --cpu-prof profile (fixture from make-cpuprofile.mjs)', async () => {
    const text = await readFile(
      new URL('../../fixtures/bench/tiny.cpuprofile', import.meta.url),
      'utf8',
    );
    const s = summarizeCpuProfile(JSON.parse(text) as CpuProfile, '/REPO');
    const spin = s.top.find((f) => f.fn.startsWith('spin '));
    assert.ok(spin, `no spin() among ${s.top.map((f) => f.fn).join(', ')}`);
    assert.match(spin.fn, /^spin test\/fixtures\/bench\/cpu-workload\.mjs:\d+$/);
    assert.equal(spin.module, 'buttersink');
    // The workload spins 80 ms of about 100: spin is the top JavaScript function.
    assert.equal(s.top.filter((f) => f.module === 'buttersink')[0]!.fn, spin.fn);
    const total = s.modules.reduce((a, m) => a + m.pct, 0);
    assert.ok(Math.abs(total - 100) < 1e-9, `module shares add up to ${total} %`);
  });

  it('reads the pid from a --cpu-prof file name', () => {
    assert.equal(pidOfProfile('CPU.20261130.061500.4242.0.001.cpuprofile'), 4242);
    assert.equal(pidOfProfile('other.cpuprofile'), undefined);
  });

  it('profiles every Node the command starts by the bench’s node path, the remote one too', () => {
    const cmd = `HOME=/h /usr/bin/node /r/bs.js -q --remote-command '/usr/bin/node /r/bs.js' a b`;
    assert.equal(
      withCpuProf(cmd, '/usr/bin/node', '/p'),
      `HOME=/h /usr/bin/node --cpu-prof --cpu-prof-dir=/p /r/bs.js -q --remote-command '/usr/bin/node --cpu-prof --cpu-prof-dir=/p /r/bs.js' a b`,
    );
    assert.equal(
      withCpuProf('btrfs send x | btrfs receive y', '/usr/bin/node', '/p'),
      'btrfs send x | btrfs receive y',
    );
  });
});

describe('bench CPU profile positions', () => {
  it('maps built files to their sources through the build’s source maps', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'bs-srcmap-'));
    try {
      await mkdir(join(repo, 'dist', 'btrfs'), { recursive: true });
      // Generated line 0 → source line 0; generated line 2 → source line 2.
      await writeFile(
        join(repo, 'dist', 'btrfs', 'a.js.map'),
        JSON.stringify({
          version: 3,
          file: 'a.js',
          sourceRoot: '',
          sources: ['../../src/btrfs/a.ts'],
          names: [],
          mappings: 'AAAA;;AAEA',
        }),
      );
      const map = sourceMapper(repo);
      assert.deepEqual(map('dist/btrfs/a.js', 2, 0), { file: 'src/btrfs/a.ts', line: 2 });
      assert.equal(map('dist/none.js', 2, 0), undefined);
      const s = summarizeCpuProfile(
        {
          nodes: [
            {
              id: 1,
              callFrame: {
                functionName: 'f',
                url: `file://${repo}/dist/btrfs/a.js`,
                lineNumber: 2,
                columnNumber: 0,
              },
            },
          ],
          startTime: 0,
          endTime: 1000,
          samples: [1],
        },
        repo,
        10,
        map,
      );
      assert.equal(s.top[0]!.fn, 'f src/btrfs/a.ts:3');
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });
});
