/**
 * Numbers of the btrfs send stream format: magic, header sizes, command and
 * attribute numbers (btrfs-progs `kernel-shared/send.h`, kernel
 * `fs/btrfs/send.h`), and the limits the parser enforces.
 */

/** The 13 magic bytes a send stream starts with: `btrfs-stream` and a NUL. */
export const STREAM_MAGIC: Buffer = Buffer.from('btrfs-stream\0', 'latin1');

/** Stream header size: magic (13) + le32 version. */
export const STREAM_HEADER_SIZE = 17;

/** Command header size: le32 payload length, le16 command, le32 CRC. */
export const COMMAND_HEADER_SIZE = 10;

/** Attribute (TLV) header size: le16 type, le16 length. v2 DATA has only the type. */
export const TLV_HEADER_SIZE = 4;

/** Highest stream version this codec understands (3 is experimental upstream). */
export const MAX_STREAM_VERSION = 3;

/**
 * A v1 command, header included, never exceeds the kernel's 64 KiB send buffer
 * (`BTRFS_SEND_BUF_SIZE_V1`).
 */
export const V1_MAX_COMMAND_SIZE = 64 * 1024;

/**
 * Default cap on a v2/v3 command payload. The format sets no maximum (kernels
 * of 2024 send at most 16 KiB + one 128 KiB compressed extent per command); the
 * cap only keeps a corrupt length from making a reader buffer gigabytes.
 */
export const DEFAULT_MAX_COMMAND_LENGTH = 16 * 1024 * 1024;

/** Command numbers (`BTRFS_SEND_C_*`). */
export const Cmd = {
  UNSPEC: 0,
  SUBVOL: 1,
  SNAPSHOT: 2,
  MKFILE: 3,
  MKDIR: 4,
  MKNOD: 5,
  MKFIFO: 6,
  MKSOCK: 7,
  SYMLINK: 8,
  RENAME: 9,
  LINK: 10,
  UNLINK: 11,
  RMDIR: 12,
  SET_XATTR: 13,
  REMOVE_XATTR: 14,
  WRITE: 15,
  CLONE: 16,
  TRUNCATE: 17,
  CHMOD: 18,
  CHOWN: 19,
  UTIMES: 20,
  END: 21,
  UPDATE_EXTENT: 22,
  FALLOCATE: 23,
  FILEATTR: 24,
  ENCODED_WRITE: 25,
  ENABLE_VERITY: 26,
} as const;

/** Attribute numbers (`BTRFS_SEND_A_*`). */
export const Attr = {
  UNSPEC: 0,
  UUID: 1,
  CTRANSID: 2,
  INO: 3,
  SIZE: 4,
  MODE: 5,
  UID: 6,
  GID: 7,
  RDEV: 8,
  CTIME: 9,
  MTIME: 10,
  ATIME: 11,
  OTIME: 12,
  XATTR_NAME: 13,
  XATTR_DATA: 14,
  PATH: 15,
  PATH_TO: 16,
  PATH_LINK: 17,
  FILE_OFFSET: 18,
  DATA: 19,
  CLONE_UUID: 20,
  CLONE_CTRANSID: 21,
  CLONE_PATH: 22,
  CLONE_OFFSET: 23,
  CLONE_LEN: 24,
  FALLOCATE_MODE: 25,
  FILEATTR: 26,
  UNENCODED_FILE_LEN: 27,
  UNENCODED_LEN: 28,
  UNENCODED_OFFSET: 29,
  COMPRESSION: 30,
  ENCRYPTION: 31,
  VERITY_ALGORITHM: 32,
  VERITY_BLOCK_SIZE: 33,
  VERITY_SALT_DATA: 34,
  VERITY_SIG_DATA: 35,
} as const;

/** Highest command number valid in each stream version (index = version). */
const MAX_COMMAND_BY_VERSION = [0, Cmd.UPDATE_EXTENT, Cmd.ENCODED_WRITE, Cmd.ENABLE_VERITY];

/** Highest attribute number valid in each stream version (index = version). */
const MAX_ATTRIBUTE_BY_VERSION = [0, Attr.CLONE_LEN, Attr.ENCRYPTION, Attr.VERITY_SIG_DATA];

/** Highest command number a stream of `version` may carry (0 for an unknown version). */
export function maxCommand(version: number): number {
  return MAX_COMMAND_BY_VERSION[version] ?? 0;
}

/** Highest attribute number a stream of `version` may carry (0 for an unknown version). */
export function maxAttribute(version: number): number {
  return MAX_ATTRIBUTE_BY_VERSION[version] ?? 0;
}

const COMMAND_NAMES: readonly string[] = invert(Cmd);
const ATTRIBUTE_NAMES: readonly string[] = invert(Attr);

function invert(table: Record<string, number>): string[] {
  const names: string[] = [];
  for (const [name, n] of Object.entries(table)) names[n] = name.toLowerCase();
  return names;
}

/** Lower-case name of command `n` as `btrfs receive --dump` spells it (`write`), or `cmd-<n>`. */
export function commandName(n: number): string {
  return COMMAND_NAMES[n] ?? `cmd-${n}`;
}

/** Lower-case name of attribute `n` (`clone_uuid`), or `attr-<n>`. */
export function attributeName(n: number): string {
  return ATTRIBUTE_NAMES[n] ?? `attr-${n}`;
}
