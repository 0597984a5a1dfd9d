import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { floorsFor, passThrough } from '../../../bench/profile-floors.js';
import type { FloorContext } from '../../../bench/profile-floors.js';

const node = '/usr/bin/node';
const cli = `${node} /r/dist/bin/buttersink.js`;
const pass = `${node} -e 'process.stdin.pipe(process.stdout)'`;
const ctx = (over: Partial<FloorContext>): FloorContext => ({
  group: 'sync',
  name: 'buttersink full sync of one snapshot (probe + transfer)',
  project: `${cli} -q /src/snaps/s1 /dst/full/`,
  baseline: 'btrfs send -q /src/snaps/s1 | btrfs receive -q /dst/full/',
  node,
  repo: '/r/',
  cli,
  ...over,
});

describe('bench design floors', () => {
  it('puts a bare Node pass-through in the middle of a plain pipe', () => {
    assert.equal(
      passThrough('btrfs send -q a | btrfs receive -q b/', node),
      `btrfs send -q a | ${node} -e 'process.stdin.pipe(process.stdout)' | btrfs receive -q b/`,
    );
    assert.equal(passThrough('btrfs subvolume list x', node), undefined);
  });

  it('a local sync: the CLI start-up before the plain pipe, and the pass-through', () => {
    const { floors, notes } = floorsFor(ctx({}));
    assert.deepEqual(
      floors.map((f) => [f.name, f.command]),
      [
        [
          'CLI start-up + plain',
          `${cli} --version >/dev/null && { btrfs send -q /src/snaps/s1 | btrfs receive -q /dst/full/; }`,
        ],
        [
          'Node pass-through',
          `btrfs send -q /src/snaps/s1 | ${node} -e 'process.stdin.pipe(process.stdout)' | btrfs receive -q /dst/full/`,
        ],
      ],
    );
    assert.deepEqual(notes, []);
  });

  it('SSH with the built-in transport: ssh2 alone, from the baseline’s ssh config and remote command', () => {
    const { floors } = floorsFor(
      ctx({
        group: 'ssh',
        name: 'btrfs → ssh://127.0.0.1 → btrfs (full s1) vs btrfs send | ssh host btrfs receive',
        project: `HOME=/h SSH_AUTH_SOCK= ${cli} -q --remote-command '${cli}' /s/snaps/s1 ssh://benchhost/d/ssh-ours/`,
        baseline:
          'btrfs send -q /s/snaps/s1 | ssh -F /h/.ssh/config benchhost btrfs receive -q /d/ssh-base/',
      }),
    );
    assert.deepEqual(
      floors.map((f) => f.command),
      [
        `${cli} --version >/dev/null && { btrfs send -q /s/snaps/s1 | ssh -F /h/.ssh/config benchhost btrfs receive -q /d/ssh-base/; }`,
        `btrfs send -q /s/snaps/s1 | ${node} /r/bench/profile-ssh2-pipe.mjs /h/.ssh/config benchhost 'btrfs receive -q /d/ssh-base/'`,
        `btrfs send -q /s/snaps/s1 | ${pass} | ssh -F /h/.ssh/config benchhost "${pass} | btrfs receive -q /d/ssh-base/"`,
      ],
    );
  });

  it('SSH with the OpenSSH transport: no ssh2 floor, Node pass-through at both ends', () => {
    const { floors } = floorsFor(
      ctx({
        group: 'ssh',
        name: 'btrfs → ssh (OpenSSH, --ssh-program ssh)',
        baseline: 'a | ssh -F c h b',
      }),
    );
    assert.deepEqual(
      floors.map((f) => [f.name, f.command]),
      [
        ['CLI start-up + plain', `${cli} --version >/dev/null && { a | ssh -F c h b; }`],
        ['Node pass-through at both ends', `a | ${pass} | ssh -F c h "${pass} | b"`],
      ],
    );
  });

  it('S3: the SDK alone, up with our --part-size and --jobs, down into the same receive', () => {
    const e = 'http://127.0.0.1:5000';
    const up = floorsFor(
      ctx({
        group: 's3',
        name: 'btrfs → S3 (moto), s1: buttersink vs btrfs send → aws s3 cp -',
        project: `${cli} -q --endpoint-url ${e} --part-size 8 --jobs 6 /s/snaps/s1 s3://bench-up/ours/`,
        baseline: `btrfs send -q /s/snaps/s1 | aws --endpoint-url ${e} s3 cp - s3://bench-up/base/s1 --quiet`,
      }),
    );
    assert.equal(
      up.floors[1]!.command,
      `btrfs send -q /s/snaps/s1 | ${node} /r/bench/profile-s3-put.mjs ${e} bench-up floor-base/s1 8 6`,
    );
    const down = floorsFor(
      ctx({
        group: 's3',
        name: 'S3 (moto) → btrfs, s1: buttersink vs aws s3 cp - → btrfs receive',
        project: `${cli} -q --endpoint-url ${e} s3://bench-down/p/s1 /d/s3-ours/`,
        baseline: `aws --endpoint-url ${e} s3 cp s3://bench-down/p/s1/x.bs - --quiet | btrfs receive -q /d/s3-base/`,
      }),
    );
    assert.equal(
      down.floors[1]!.command,
      `${node} /r/bench/profile-s3-get.mjs ${e} bench-down p/s1/x.bs | btrfs receive -q /d/s3-base/`,
    );
  });

  it('a rerun: Node’s own start-up, and the CLI’s before the plain listing', () => {
    const { floors } = floorsFor(
      ctx({
        group: 'rerun',
        name: 'rerun with nothing to transfer',
        baseline: 'btrfs subvolume list -u -R /a',
      }),
    );
    assert.deepEqual(
      floors.map((f) => [f.name, f.command]),
      [
        ['Node start-up', `${node} -e 0`],
        [
          'CLI start-up + plain',
          `${cli} --version >/dev/null && { btrfs subvolume list -u -R /a; }`,
        ],
      ],
    );
  });

  it('says which floor it could not derive from a baseline of another shape', () => {
    const { floors, notes } = floorsFor(
      ctx({ group: 's3', name: 'btrfs → S3 (moto), s1', baseline: 'something else' }),
    );
    assert.deepEqual(
      floors.map((f) => f.name),
      ['CLI start-up + plain'],
    );
    assert.deepEqual(notes, [
      'No SDK upload floor: the baseline command has another shape than expected.',
    ]);
  });
});
