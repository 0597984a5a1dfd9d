/**
 * What the send-stream parser emits and the serializer takes.
 */

/** One attribute (TLV) of a command. */
export interface SendAttribute {
  /** Attribute number (`Attr.*`). */
  readonly type: number;
  /**
   * The value bytes. From the parser, a view into the command's payload (no
   * copy): valid as long as the caller keeps the chunk it came from.
   */
  readonly value: Buffer;
}

/** The 17-byte stream header (magic + version). Concatenated streams have several. */
export interface StreamHeaderEvent {
  readonly type: 'header';
  /** Byte offset of the header in the input. */
  readonly offset: number;
  /** Stream format version, 1–3. */
  readonly version: number;
}

/** One command, framed and (unless verification was turned off) CRC-checked. */
export interface CommandEvent {
  readonly type: 'command';
  /** Zero-based index of the command in the input, counted across concatenated streams. */
  readonly index: number;
  /** Byte offset of the command's header in the input. */
  readonly offset: number;
  /** Command number (`Cmd.*`). */
  readonly cmd: number;
  /** Payload length in bytes (the command occupies 10 + `length` bytes). */
  readonly length: number;
  /** The CRC stored in the command header. */
  readonly crc: number;
  /** Version of the stream the command belongs to. */
  readonly version: number;
  /**
   * The payload and its attributes, undefined unless the parser was asked to
   * collect this command. Views into the input where the command lay in one
   * chunk, else one copy of the command's payload. (Always present as keys, so
   * every command event has one shape.)
   */
  readonly payload: Buffer | undefined;
  readonly attributes: readonly SendAttribute[] | undefined;
}

/** Anything the parser emits. */
export type SendStreamEvent = StreamHeaderEvent | CommandEvent;
