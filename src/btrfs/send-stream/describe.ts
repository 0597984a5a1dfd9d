/**
 * JSON-friendly descriptions of parsed send-stream units, for debugging,
 * logs and the golden files of the test fixtures.
 */
import { createHash } from 'node:crypto';
import { Attr, attributeName, commandName } from './constants.js';
import type { SendAttribute, SendStreamEvent } from './types.js';
import { readString, readTimespec, readU64, uuidToString } from './values.js';

/** One attribute, decoded by its type. */
export interface AttributeDescription {
  type: number;
  name: string;
  /**
   * UUIDs as `8-4-4-4-12`, integers in decimal, times as `sec.nanoseconds`,
   * paths and names as text, other bytes as hex (≤ 64 bytes) or
   * `<N bytes sha256:HEX>`.
   */
  value: string;
}

/** A stream header or command, decoded. */
export type EventDescription =
  | { type: 'header'; offset: number; version: number }
  | {
      type: 'command';
      index: number;
      offset: number;
      cmd: number;
      name: string;
      length: number;
      crc: string;
      attributes?: AttributeDescription[];
    };

const UUIDS = new Set<number>([Attr.UUID, Attr.CLONE_UUID]);
const U64S = new Set<number>([
  Attr.CTRANSID,
  Attr.INO,
  Attr.SIZE,
  Attr.MODE,
  Attr.UID,
  Attr.GID,
  Attr.RDEV,
  Attr.FILE_OFFSET,
  Attr.CLONE_CTRANSID,
  Attr.CLONE_OFFSET,
  Attr.CLONE_LEN,
  Attr.FILEATTR,
  Attr.UNENCODED_FILE_LEN,
  Attr.UNENCODED_LEN,
  Attr.UNENCODED_OFFSET,
]);
const U32S = new Set<number>([
  Attr.FALLOCATE_MODE,
  Attr.COMPRESSION,
  Attr.ENCRYPTION,
  Attr.VERITY_BLOCK_SIZE,
]);
const TIMES = new Set<number>([Attr.CTIME, Attr.MTIME, Attr.ATIME, Attr.OTIME]);
const STRINGS = new Set<number>([
  Attr.PATH,
  Attr.PATH_TO,
  Attr.PATH_LINK,
  Attr.CLONE_PATH,
  Attr.XATTR_NAME,
]);

/** Decodes one attribute value by its type; falls back to bytes when the size is unexpected. */
export function describeAttribute(a: SendAttribute): AttributeDescription {
  return { type: a.type, name: attributeName(a.type), value: describeValue(a) };
}

/** Describes a parser event; attributes are included when the parser collected them. */
export function describeEvent(e: SendStreamEvent): EventDescription {
  if (e.type === 'header') return { type: 'header', offset: e.offset, version: e.version };
  const d: EventDescription = {
    type: 'command',
    index: e.index,
    offset: e.offset,
    cmd: e.cmd,
    name: commandName(e.cmd),
    length: e.length,
    crc: `0x${e.crc.toString(16).padStart(8, '0')}`,
  };
  if (e.attributes) d.attributes = e.attributes.map(describeAttribute);
  return d;
}

function describeValue(a: SendAttribute): string {
  const v = a.value;
  if (UUIDS.has(a.type) && v.length === 16) return uuidToString(v);
  if (U64S.has(a.type) && v.length === 8) return readU64(v).toString();
  if (TIMES.has(a.type) && v.length === 12) {
    const t = readTimespec(v);
    return `${t.sec}.${String(t.nsec).padStart(9, '0')}`;
  }
  if (STRINGS.has(a.type)) return readString(v);
  if (U32S.has(a.type) && v.length === 4) return String(v.readUInt32LE(0));
  if (v.length <= 64) return v.toString('hex');
  return `<${v.length} bytes sha256:${createHash('sha256').update(v).digest('hex')}>`;
}
