/**
 * Serializes send-stream units: the stream header and commands (attributes in
 * the order given, CRC computed).
 */
import {
  Attr,
  COMMAND_HEADER_SIZE,
  MAX_STREAM_VERSION,
  STREAM_HEADER_SIZE,
  STREAM_MAGIC,
  TLV_HEADER_SIZE,
} from './constants.js';
import { commandCrc } from './crc.js';
import type { SendCrc } from './crc.js';
import type { SendAttribute } from './types.js';

/**
 * The 17-byte stream header for `version`.
 * @throws {RangeError} for a version outside 1–3.
 */
export function serializeStreamHeader(version: number): Buffer {
  if (!Number.isInteger(version) || version < 1 || version > MAX_STREAM_VERSION) {
    throw new RangeError(`send stream version must be 1–${MAX_STREAM_VERSION}, got ${version}`);
  }
  const b = Buffer.alloc(STREAM_HEADER_SIZE);
  STREAM_MAGIC.copy(b, 0);
  b.writeUInt32LE(version, STREAM_MAGIC.length);
  return b;
}

/**
 * Encodes one command: header (payload length, `cmd`, CRC) then each attribute
 * as a TLV, in the order given. In a v2+ stream (`version` ≥ 2) a DATA attribute
 * is written with its type only and must come last. The result is a new buffer;
 * `crc` is used (and reset) to compute the command's CRC.
 *
 * Serializing the attributes `SendStreamParser` returned for a command gives back
 * that command's exact bytes.
 * @throws {RangeError} when an attribute value exceeds 65535 bytes (except v2+
 * DATA), DATA is not last in v2+, or the command exceeds 4 GiB.
 */
export function serializeCommand(
  cmd: number,
  attributes: readonly SendAttribute[],
  version: number,
  crc: SendCrc,
): Buffer {
  let length = 0;
  attributes.forEach((a, i) => {
    const implicit = a.type === Attr.DATA && version >= 2;
    if (implicit && i !== attributes.length - 1) {
      throw new RangeError('in a v2+ stream, the DATA attribute must be the last one');
    }
    if (!implicit && a.value.length > 0xffff) {
      throw new RangeError(`attribute ${a.type} has ${a.value.length} bytes, over 65535`);
    }
    length += (implicit ? 2 : TLV_HEADER_SIZE) + a.value.length;
  });
  if (length > 0xffffffff) throw new RangeError(`command payload of ${length} bytes is over 4 GiB`);
  const out = Buffer.allocUnsafe(COMMAND_HEADER_SIZE + length);
  out.writeUInt32LE(length, 0);
  out.writeUInt16LE(cmd, 4);
  out.writeUInt32LE(0, 6);
  let p = COMMAND_HEADER_SIZE;
  for (const a of attributes) {
    out.writeUInt16LE(a.type, p);
    p += 2;
    if (!(a.type === Attr.DATA && version >= 2)) {
      out.writeUInt16LE(a.value.length, p);
      p += 2;
    }
    out.set(a.value, p);
    p += a.value.length;
  }
  const header = out.subarray(0, COMMAND_HEADER_SIZE);
  out.writeUInt32LE(commandCrc(crc, header, out.subarray(COMMAND_HEADER_SIZE)), 6);
  return out;
}
