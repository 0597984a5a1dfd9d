/**
 * The CRC of send-stream commands: CRC-32C (Castagnoli) with seed 0 and no
 * final XOR, over the 10-byte command header with its CRC field zeroed, then
 * the payload. This is not the standard CRC-32C (seed and final XOR
 * 0xFFFFFFFF), but `btrfsCrc(x) = stdCrc32c(FF FF FF FF ‖ x) XOR 0xFFFFFFFF`:
 * four 0xFF bytes first turn the standard seed into 0. So hash-wasm's
 * standard CRC-32C (WebAssembly, ≈ 1.7 GB/s here) computes it in one pass.
 */
import { createCRC32 } from 'hash-wasm';
import type { IHasher } from 'hash-wasm';

/** Reflected CRC-32C polynomial, as hash-wasm's `createCRC32` takes it. */
const CRC32C_POLYNOMIAL = 0x82f63b78;

/** Cancels the standard CRC-32C seed: after these bytes the register is 0. */
const SEED_CANCEL = Buffer.from([0xff, 0xff, 0xff, 0xff]);

/**
 * An incremental send-stream CRC. Not shareable between concurrent users:
 * each parser owns one, because a command's CRC is fed across chunks.
 */
export interface SendCrc {
  /** Starts a new CRC (register 0). Returns `this`. */
  reset(): SendCrc;
  /** Feeds bytes. Returns `this`. */
  update(data: Uint8Array): SendCrc;
  /** The CRC of everything fed since `reset()`, as an unsigned 32-bit number. */
  digest(): number;
}

class WasmSendCrc implements SendCrc {
  readonly #hasher: IHasher;
  constructor(hasher: IHasher) {
    this.#hasher = hasher;
    this.reset();
  }
  reset(): SendCrc {
    this.#hasher.init();
    this.#hasher.update(SEED_CANCEL);
    return this;
  }
  update(data: Uint8Array): SendCrc {
    if (data.length > 0) this.#hasher.update(data);
    return this;
  }
  digest(): number {
    const d = this.#hasher.digest('binary');
    // hash-wasm gives the standard CRC big-endian; undo its final XOR.
    return (((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) ^ 0xffffffff) >>> 0;
  }
}

/** Creates an independent {@link SendCrc} (instantiates a small WebAssembly module). */
export async function createSendCrc(): Promise<SendCrc> {
  return new WasmSendCrc(await createCRC32(CRC32C_POLYNOMIAL));
}

/**
 * The CRC a command must carry: `header` is its 10-byte header (the CRC field,
 * bytes 6–9, is treated as zero whatever it holds), `payload` its attributes.
 * `crc` is reset first and left holding this command's state.
 */
export function commandCrc(crc: SendCrc, header: Uint8Array, payload: Uint8Array): number {
  crc.reset();
  crc.update(header.subarray(0, 6));
  crc.update(ZERO_CRC_FIELD);
  crc.update(payload);
  return crc.digest();
}

const ZERO_CRC_FIELD = Buffer.alloc(4);
