/**
 * The in-memory store against the store contract, with synthetic streams.
 */
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';
import { describeStoreContract } from '../../../contract/store-contract.js';
import { syntheticStream, syntheticVolume } from '../../../fixtures/memory-snapshots.js';

describeStoreContract('memory', async () => {
  const a = syntheticVolume(1, 'a');
  const b = syntheticVolume(2, 'b', a);
  const store = new MemoryStore();
  return {
    store,
    full: { volume: a, from: null, bytes: await syntheticStream(a, null, 'x'.repeat(300_000)) },
    incremental: { volume: b, from: a, bytes: await syntheticStream(b, a, 'second') },
  };
});
