/**
 * The btrfs send-stream codec: constants, CRC, incremental parser, serializer,
 * value codecs and JSON descriptions.
 */
export * from './constants.js';
export * from './crc.js';
export * from './describe.js';
export * from './parser.js';
export * from './serialize.js';
export type * from './types.js';
export * from './values.js';
