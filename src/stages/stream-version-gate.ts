/**
 * stream-version-gate: stops a send stream whose protocol version the
 * receiver cannot read, before the receiver sees a byte of it, with one line
 * saying so and what to do. Put in front of a `btrfs receive` known to read
 * protocol 1 only (btrfs-progs before 6.0, or a server started with
 * `--no-compressed-data`), where a diff stored with `--compressed-data`
 * (protocol 2) would otherwise fail inside `btrfs receive`, after it created
 * a partial subvolume.
 *
 * Buffering/backpressure: holds at most the 17-byte stream header until it is
 * complete; afterwards chunks pass through unchanged (same Buffers). Only the
 * first stream header is looked at: later ones (concatenated streams) are the
 * parsers' business.
 */
import { Transform } from 'node:stream';
import { StoreError, UsageError } from '../errors.js';
import { STREAM_HEADER_SIZE, STREAM_MAGIC } from '../btrfs/send-stream/constants.js';
import { destroyOnAbort, streamDone, transformStage } from '../streams/stage.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** A stream's protocol version is above what the receiver reads. */
export class StreamVersionError extends StoreError {
  override readonly code = 'STREAM_VERSION';
  /** The stream's version. */
  readonly version: number;
  constructor(message: string, version: number) {
    super(message);
    this.version = version;
  }
}

/** Options of {@link streamVersionGate}. */
export interface StreamVersionGateOptions extends StageOptions {
  /** Highest stream version the receiver reads (≥ 1). */
  maxVersion: number;
  /** The receiver, for the message: `btrfs receive at ssh://host`. */
  receiver: string;
  /** Why it reads no more, for the message (one line). */
  why?: string;
}

/** What {@link streamVersionGate} saw. */
export interface StreamVersionGateResult {
  /** The first stream header's version; undefined when the input was not a send stream. */
  version: number | undefined;
}

/**
 * Creates the gate. Contract: output equals input while the first stream
 * header's version is at most `maxVersion` (or the input is no send stream:
 * the parsers behind report that); otherwise the stream fails with a
 * {@link StreamVersionError} and nothing is passed on.
 * @throws {UsageError} for a `maxVersion` that is not a positive integer.
 */
export function streamVersionGate(
  opts: StreamVersionGateOptions,
): TransformStage<StreamVersionGateResult> {
  if (!Number.isInteger(opts.maxVersion) || opts.maxVersion < 1) {
    throw new UsageError('streamVersionGate: maxVersion must be a positive integer');
  }
  const result: StreamVersionGateResult = { version: undefined };
  let held: Buffer[] | undefined = [];
  let heldBytes = 0;
  const release = (stream: Transform): Error | undefined => {
    const head = Buffer.concat(held!, heldBytes);
    held = undefined;
    if (head.length >= STREAM_HEADER_SIZE && head.subarray(0, 13).equals(STREAM_MAGIC)) {
      const version = head.readUInt32LE(STREAM_MAGIC.length);
      result.version = version;
      if (version > opts.maxVersion) return refusal(opts, version);
    }
    stream.push(head);
    return undefined;
  };
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (!held) {
        callback(null, chunk);
        return;
      }
      held.push(chunk);
      heldBytes += chunk.length;
      callback(heldBytes >= STREAM_HEADER_SIZE ? release(this) : undefined);
    },
    flush(callback) {
      callback(held && heldBytes > 0 ? release(this) : undefined);
    },
  });
  destroyOnAbort(stream, opts.signal);
  return transformStage(
    'stream-version-gate',
    stream,
    streamDone(stream).then(() => result),
  );
}

function refusal(opts: StreamVersionGateOptions, version: number): StreamVersionError {
  const compressed = version === 2 ? ' (a diff sent with --compressed-data)' : '';
  return new StreamVersionError(
    `this diff is a protocol ${version} send stream${compressed}, but ${opts.receiver} reads protocol ${opts.maxVersion} only` +
      `${opts.why ? ` (${opts.why})` : ''}; restore it with btrfs-progs 6.0 or later on the receiving host`,
    version,
  );
}
