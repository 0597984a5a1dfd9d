import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  probeStream,
  progsVersionOf,
  protocol1Only,
  streamSupportFrom,
} from '../../../src/btrfs/send-capabilities.js';
import type { LocalStreamFacts } from '../../../src/btrfs/send-capabilities.js';
import { Cmd, SendStreamParser, createSendCrc } from '../../../src/btrfs/send-stream/index.js';

const HELP_6_2 = `usage: btrfs send [-ve] [-p <parent>] [-c <clone-src>] [-f <outfile>] <subvol> [<subvol>...]
    --no-data                 send in NO_FILE_DATA mode
    --proto N                 use protocol version N, or 0 to use the highest version supported by the sending kernel
    --compressed-data         send data that is compressed on the filesystem directly without decompressing it
`;
const HELP_5_10 = `usage: btrfs send [-ve] [-p <parent>] [-c <clone-src>] [-f <outfile>] <subvol> [<subvol>...]
    --no-data                 send in NO_FILE_DATA mode
`;

const capable: LocalStreamFacts = {
  progsVersion: 'btrfs-progs v6.2\n',
  kernelSendVersion: '2\n',
  sendHelp: HELP_6_2,
  receivesV2: true,
};

describe('streamSupportFrom', () => {
  it('btrfs-progs 6.2 on a kernel that sends protocol 2: compressed sends, protocol 2 receives', () => {
    assert.deepEqual(streamSupportFrom(capable), { compressedSend: true, receiveVersion: 2 });
  });

  it('a kernel that sends protocol 1 only, or does not say: no compressed sends, naming the kernel', () => {
    for (const kernelSendVersion of ['1\n', undefined]) {
      const s = streamSupportFrom({ ...capable, kernelSendVersion });
      assert.equal(s.compressedSend, false);
      assert.match(s.sendWhy!, /kernel.*Linux 6\.0 or later/);
      assert.equal(s.receiveVersion, 2, 'receiving is btrfs-progs’ business');
    }
  });

  it('a btrfs send without --compressed-data: no compressed sends, naming the btrfs-progs version', () => {
    const s = streamSupportFrom({
      ...capable,
      progsVersion: 'btrfs-progs v5.10.1',
      sendHelp: HELP_5_10,
    });
    assert.equal(s.compressedSend, false);
    assert.match(s.sendWhy!, /btrfs-progs 5\.10\.1 has no 'btrfs send --compressed-data'/);
  });

  it('a btrfs receive that did not read the protocol 2 probe: receives protocol 1, saying why', () => {
    const s = streamSupportFrom({
      ...capable,
      progsVersion: 'btrfs-progs v5.10.1',
      receivesV2: false,
      receiveProbeError: 'ERROR: stream version 2 not supported, please use newer version',
    });
    assert.equal(s.receiveVersion, 1);
    assert.match(
      s.receiveWhy!,
      /^btrfs receive \(btrfs-progs 5\.10\.1\) does not read protocol 2 streams .*stream version 2 not supported/,
    );
  });

  it('protocol1Only turns both directions off with one reason', () => {
    assert.deepEqual(protocol1Only('off'), {
      compressedSend: false,
      sendWhy: 'off',
      receiveVersion: 1,
      receiveWhy: 'off',
    });
  });

  it('progsVersionOf reads btrfs --version', () => {
    assert.equal(progsVersionOf('btrfs-progs v6.2\n'), '6.2');
    assert.equal(progsVersionOf('btrfs-progs v5.10.1'), '5.10.1');
    assert.equal(progsVersionOf('command not found'), undefined);
  });
});

describe('probeStream', () => {
  it('is a valid protocol 2 stream: SUBVOL, ENCODED_WRITE, END', async () => {
    const p = new SendStreamParser({ crc: await createSendCrc() });
    const events = p.push(await probeStream());
    p.end();
    assert.equal(p.version, 2);
    assert.deepEqual(
      events.flatMap((e) => (e.type === 'command' ? [e.cmd] : [])),
      [Cmd.SUBVOL, Cmd.ENCODED_WRITE, Cmd.END],
    );
  });
});
