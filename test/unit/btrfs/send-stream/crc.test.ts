import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  commandCrc,
  createSendCrc as createAnySendCrc,
  sendCrcEngine,
} from '../../../../src/btrfs/send-stream/crc.js';
import { fixture, rng } from '../../../fixtures/streams/index.js';

/** Bit-by-bit CRC-32C as btrfs computes it: seed 0, no final XOR. */
function referenceCrc(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return crc >>> 0;
}

it('uses the native CRC-32C engine where its binary is installed', async () => {
  assert.equal(await sendCrcEngine(), 'native');
});

for (const engine of ['native', 'wasm'] as const) {
  const createSendCrc = () => createAnySendCrc(engine);
  describe(`send-stream CRC (${engine})`, () => {
    it('equals the bitwise seed-0, no-final-XOR CRC-32C on random data of many lengths', async () => {
      const crc = await createSendCrc();
      const random = rng(7);
      for (let len = 0; len < 300; len += 1 + Math.floor(random() * 7)) {
        const data = Buffer.from(Array.from({ length: len }, () => Math.floor(random() * 256)));
        assert.equal(crc.reset().update(data).digest(), referenceCrc(data), `length ${len}`);
      }
    });

    it('is not the standard CRC-32C (check value 0xE3069283 for "123456789")', async () => {
      const crc = await createSendCrc();
      const v = crc.reset().update(Buffer.from('123456789')).digest();
      assert.equal(v, referenceCrc(Buffer.from('123456789')));
      assert.notEqual(v, 0xe3069283);
    });

    it('gives the same result fed in pieces', async () => {
      const crc = await createSendCrc();
      const data = fixture('incr-v1');
      const whole = crc.reset().update(data).digest();
      crc.reset();
      for (let p = 0; p < data.length; p += 1000) crc.update(data.subarray(p, p + 1000));
      assert.equal(crc.digest(), whole);
      assert.equal(whole, referenceCrc(data));
    });

    it('commandCrc matches the CRC btrfs stored in a recorded command, whatever the CRC field holds', async () => {
      const crc = await createSendCrc();
      const stream = fixture('full-v1');
      const header = stream.subarray(17, 27);
      const len = header.readUInt32LE(0);
      const stored = header.readUInt32LE(6);
      const payload = stream.subarray(27, 27 + len);
      assert.equal(commandCrc(crc, header, payload), stored);
      const zeroed = Buffer.from(header);
      zeroed.writeUInt32LE(0, 6);
      assert.equal(referenceCrc(Buffer.concat([zeroed, payload])), stored);
    });
  });
}
