import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { StreamSupport } from '../../../src/btrfs/send-capabilities.js';
import { setLogger } from '../../../src/log.js';
import type { Logger, Warning } from '../../../src/log.js';
import { compressedDataFor, decideCompressedData } from '../../../src/stores/compressed-data.js';
import type { Store } from '../../../src/stores/store.js';
import { parseLocation } from '../../../src/stores/uri.js';

const FULL: StreamSupport = { compressedSend: true, receiveVersion: 2 };
const OLD: StreamSupport = {
  compressedSend: false,
  sendWhy: 'btrfs-progs 5.10 has no send --compressed-data',
  receiveVersion: 1,
  receiveWhy: 'btrfs receive (btrfs-progs 5.10) does not read protocol 2',
};

/** A store as far as the decision looks at it: where it is and what it reports (absent: none). */
function side(uri: string, support?: StreamSupport | Error): Store {
  const s = { location: parseLocation(uri) } as unknown as Store & {
    streamSupport?: () => Promise<StreamSupport>;
  };
  if (support instanceof Error) s.streamSupport = () => Promise.reject(support);
  else if (support) s.streamSupport = async () => support;
  return s;
}

describe('decideCompressedData', () => {
  it('sends compressed data when the source sends it and the destination reads protocol 2', async () => {
    assert.deepEqual(await decideCompressedData(side('/a/', FULL), side('ssh://h/b/', FULL)), {
      compressedData: true,
    });
  });

  it('into a store that keeps any stream (S3: no streamSupport)', async () => {
    assert.deepEqual(await decideCompressedData(side('/a/', FULL), side('s3://bkt/p/')), {
      compressedData: true,
    });
  });

  it('falls back, naming the side and its reason, when either side cannot', async () => {
    assert.deepEqual(await decideCompressedData(side('/a/', OLD), side('/b/', FULL)), {
      compressedData: false,
      fallback: '/a/: btrfs-progs 5.10 has no send --compressed-data',
    });
    assert.deepEqual(await decideCompressedData(side('/a/', FULL), side('ssh://h/b/', OLD)), {
      compressedData: false,
      fallback: 'ssh://h/b/: btrfs receive (btrfs-progs 5.10) does not read protocol 2',
    });
    const broken = side('ssh://h/b/', new Error('connection lost'));
    assert.deepEqual(await decideCompressedData(side('/a/', FULL), broken), {
      compressedData: false,
      fallback: 'ssh://h/b/: connection lost',
    });
  });

  it('a source that sends what it holds (S3), or --no-compressed-data: protocol 1, nothing to say', async () => {
    assert.deepEqual(await decideCompressedData(side('s3://bkt/p/'), side('/b/', OLD)), {
      compressedData: false,
    });
    assert.deepEqual(
      await decideCompressedData(side('/a/', FULL), side('/b/', FULL), { compressedData: false }),
      { compressedData: false },
    );
  });
});

describe('compressedDataFor', () => {
  let warnings: Warning[];
  let previous: Logger;
  beforeEach(() => {
    warnings = [];
    previous = setLogger({ warn: (w) => warnings.push(w), debug: () => undefined });
  });
  afterEach(() => setLogger(previous));

  it('says the fallback once per pair of stores, however many transfers ask', async () => {
    const source = side('/a/', FULL);
    const dest = side('ssh://h/b/', OLD);
    for (let i = 0; i < 3; i++) assert.equal(await compressedDataFor(source, dest), false);
    assert.deepEqual(
      warnings.map((w) => [w.code, w.message]),
      [
        [
          'COMPRESSED_DATA_FALLBACK',
          'sending uncompressed (protocol 1): ssh://h/b/: btrfs receive (btrfs-progs 5.10) does not read protocol 2',
        ],
      ],
    );
    // Another run (other store objects) says it again.
    assert.equal(await compressedDataFor(side('/a/', FULL), side('ssh://h/b/', OLD)), false);
    assert.equal(warnings.length, 2);
  });

  it('is true by default where both can, false and silent with compressedData: false', async () => {
    const source = side('/a/', FULL);
    const dest = side('/b/', FULL);
    assert.equal(await compressedDataFor(source, dest, { compressedData: false }), false);
    assert.equal(await compressedDataFor(source, dest), true);
    assert.equal(await compressedDataFor(side('/a/', OLD), dest, { compressedData: false }), false);
    assert.deepEqual(warnings, []);
  });
});
