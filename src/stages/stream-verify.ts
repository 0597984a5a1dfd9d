/**
 * stream-verify: passes a btrfs send stream through unchanged while checking
 * its header, the framing and CRC-32C of every command, and that it ends with
 * END.
 *
 * Buffering and backpressure: bytes are released only once the command they
 * belong to has been checked, so at most one command (≤ 64 KiB in v1, ≈ 144 KiB
 * from 2024 kernels in v2, `maxCommandLength` at worst) plus the current chunk is
 * held, by reference, never copied. The END command is held until the input has
 * ended and nothing followed it, so a consumer (`btrfs receive`) never sees a
 * complete stream unless all of it verified: on failure it sees a stream cut at
 * the last good command, and the stream errors with a StreamCorruptError (the
 * receiving sink then kills the receiver rather than ending its input). For
 * streams sent back to back (`btrfs send a b`), each END is released once the
 * next stream header verified: the guarantee holds per stream.
 * Backpressure is the Transform's own: no read-ahead beyond one chunk.
 * Next to other parsing stages in a pipeline it shares their parse (stream-pass.ts).
 */
import { UsageError } from '../errors.js';
import { MAX_STREAM_VERSION } from '../btrfs/send-stream/constants.js';
import { checkMaxCommandLength } from '../btrfs/send-stream/parsing-transform.js';
import { passStage } from '../btrfs/send-stream/stream-pass.js';
import type { SendStreamPass } from '../btrfs/send-stream/stream-pass.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** Options of {@link streamVerify}. */
export interface StreamVerifyOptions extends StageOptions {
  /**
   * Highest stream version accepted. Default 2, the highest `btrfs receive`
   * reads today; 3 is experimental upstream. Keeping it at what the receiver
   * reads also catches a flipped bit in the header's version field.
   */
  maxVersion?: number;
  /** Largest command payload accepted in v2+ streams, bytes. Default 16 MiB. */
  maxCommandLength?: number;
}

/** What {@link streamVerify} saw in a stream that verified. */
export interface VerifyResult {
  /** Bytes passed through (the whole stream). */
  bytes: number;
  /** Commands verified, END included. */
  commands: number;
  /** Version of the (last) stream header. */
  version: number;
  /** Stream headers seen: more than 1 for streams sent back to back. */
  streams: number;
}

/**
 * Creates a verifying pass-through stage.
 *
 * Contract: the output is byte-for-byte the input; it ends only after END was
 * seen as the last command and the input ended. Any corruption (bad magic,
 * unknown version, bad length or command number, CRC mismatch, truncation,
 * trailing bytes after END) errors the stream with a StreamCorruptError
 * naming the command index and byte offset; `result` rejects with it. `result`
 * resolves once the output has been read to its end.
 * @throws {UsageError} for invalid options.
 */
export function streamVerify(opts: StreamVerifyOptions = {}): TransformStage<VerifyResult> {
  const maxVersion = opts.maxVersion ?? 2;
  if (!Number.isInteger(maxVersion) || maxVersion < 1 || maxVersion > MAX_STREAM_VERSION) {
    throw new UsageError(`streamVerify: maxVersion must be 1–${MAX_STREAM_VERSION}`);
  }
  const maxCommandLength = checkMaxCommandLength('streamVerify', opts.maxCommandLength);
  const pass: SendStreamPass<VerifyResult> = {
    verify: 'all',
    reads: () => false,
    // Release every verified command, but keep a final END back until the input ended.
    holds: () => true,
    holdsEnd: true,
    maxVersion,
    ...(maxCommandLength === undefined ? {} : { maxCommandLength }),
    end: (totals) => ({ ...totals }),
  };
  return passStage('stream-verify', pass, opts.signal);
}
