/**
 * The store contract against the S3 store on moto_server. S3 holds streams,
 * not subvolumes, so the known snapshots are synthetic streams; the full one
 * is 8 MiB, so an interrupted receive has opened a multipart upload (5 MiB
 * parts) by the time it breaks off.
 */
import { after, before } from 'node:test';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/s3/s3-client.js';
import { S3Store } from '../../src/stores/s3/s3-store.js';
import { parseLocation } from '../../src/stores/uri.js';
import type { S3Location } from '../../src/stores/uri.js';
import { describeStoreContract } from '../contract/store-contract.js';
import { syntheticStream, syntheticVolume } from '../fixtures/memory-snapshots.js';
import { startMoto, useMotoEnv } from '../fixtures/moto.js';
import type { Moto } from '../fixtures/moto.js';
import { integrationPrereqs } from '../fixtures/require-integration.js';

const { skip } = integrationPrereqs({ moto: true });
const MiB = 1024 * 1024;

let moto: Moto | undefined;
let restoreEnv: (() => void) | undefined;
let n = 0;
if (!skip) {
  before(async () => {
    restoreEnv = useMotoEnv();
    moto = await startMoto();
    const client = createS3Client({ endpoint: moto.endpoint });
    await client.send(new CreateBucketCommand({ Bucket: 'contract' }));
    client.destroy();
  });
  after(() => restoreEnv?.());
}

describeStoreContract(
  's3',
  async () => {
    const a = syntheticVolume(1, 'a');
    const b = syntheticVolume(2, 'b', a);
    const open = () =>
      new S3Store(parseLocation(`s3://contract/case-${n}/`) as S3Location, {
        endpoint: moto!.endpoint,
        partSize: 5 * MiB,
        jobs: 2,
      });
    const store = open();
    const other = open();
    n++;
    return {
      store,
      full: { volume: a, from: null, bytes: await syntheticStream(a, null, 'x'.repeat(8 * MiB)) },
      incremental: { volume: b, from: a, bytes: await syntheticStream(b, a, 'second') },
      interruptAt: 7 * MiB,
      other: () => other,
    };
  },
  { skip },
);
