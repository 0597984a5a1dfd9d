/**
 * Codecs for attribute values: UUIDs (16 bytes), little-endian u64, strings
 * (paths, xattr names: raw bytes, no terminator) and timespecs.
 */
import { UsageError } from '../../errors.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Formats 16 bytes as btrfs prints a UUID: lower-case `8-4-4-4-12` hex. */
export function uuidToString(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError(`a UUID has 16 bytes, got ${bytes.length}`);
  const h = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** True when `s` is a UUID in `8-4-4-4-12` hex form (either case). */
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/**
 * Parses a `8-4-4-4-12` hex UUID (either case) into 16 new bytes.
 * @throws {UsageError} when `s` is not such a UUID.
 */
export function uuidFromString(s: string): Buffer {
  if (!UUID_RE.test(s)) throw new UsageError(`not a UUID: ${JSON.stringify(s)}`);
  return Buffer.from(s.replace(/-/g, ''), 'hex');
}

/**
 * Reads a little-endian u64 attribute value.
 * @throws {RangeError} when `value` is not 8 bytes long.
 */
export function readU64(value: Uint8Array): bigint {
  if (value.length !== 8) throw new RangeError(`a u64 attribute has 8 bytes, got ${value.length}`);
  return Buffer.from(value.buffer, value.byteOffset, 8).readBigUInt64LE(0);
}

/**
 * Encodes `n` (0 ≤ n < 2^64) as 8 new little-endian bytes.
 * @throws {RangeError} when `n` is negative, too large or not an integer.
 */
export function writeU64(n: bigint | number): Buffer {
  const v = typeof n === 'bigint' ? n : toBigInt(n);
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`not a u64: ${n}`);
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64LE(v, 0);
  return b;
}

/** Decodes a string attribute (path, xattr name) as UTF-8; btrfs stores raw bytes. */
export function readString(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.length).toString('utf8');
}

/** A btrfs timespec: le64 seconds, le32 nanoseconds. */
export interface Timespec {
  readonly sec: bigint;
  readonly nsec: number;
}

/**
 * Reads a 12-byte timespec attribute value.
 * @throws {RangeError} when `value` is not 12 bytes long.
 */
export function readTimespec(value: Uint8Array): Timespec {
  if (value.length !== 12) throw new RangeError(`a timespec has 12 bytes, got ${value.length}`);
  const b = Buffer.from(value.buffer, value.byteOffset, 12);
  return { sec: b.readBigInt64LE(0), nsec: b.readUInt32LE(8) };
}

function toBigInt(n: number): bigint {
  if (!Number.isSafeInteger(n)) throw new RangeError(`not a u64: ${n}`);
  return BigInt(n);
}
