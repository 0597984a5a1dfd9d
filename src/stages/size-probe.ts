/**
 * Size probes: sinks that measure a diff without storing it.
 *
 * - `countBytes()` counts the bytes of any stream (the original tool's probe:
 *   run a whole test send and count).
 * - `noDataSizeProbe()` reads a `btrfs send --no-data` stream, which carries every
 *   UPDATE_EXTENT (path, offset, size) instead of WRITE commands with the data,
 *   and computes from it the size the real stream will have: tens of times
 *   faster, since no file data is read.
 *
 * Buffering and backpressure: both are plain Writables that consume each chunk
 * at once and hold nothing (the probe keeps at most one small command that
 * spans chunks); backpressure is the Writable's own.
 */
import { Writable } from 'node:stream';
import { UsageError } from '../errors.js';
import {
  Attr,
  COMMAND_HEADER_SIZE,
  Cmd,
  MAX_STREAM_VERSION,
  STREAM_HEADER_SIZE,
  TLV_HEADER_SIZE,
} from '../btrfs/send-stream/constants.js';
import { createSendCrc } from '../btrfs/send-stream/crc.js';
import { SendStreamParser } from '../btrfs/send-stream/parser.js';
import type { SendStreamEvent } from '../btrfs/send-stream/types.js';
import { readU64 } from '../btrfs/send-stream/values.js';
import { destroyOnAbort, sinkStage, streamDone } from '../streams/stage.js';
import type { SinkStage, StageOptions } from '../streams/stage.js';

/**
 * File data per WRITE command in real streams, by version: the kernel splits
 * each extent into WRITEs of 48 KiB (`BTRFS_SEND_READ_SIZE`) in v1 and of
 * 128 KiB in v2+ (measured on Linux 6.18 with btrfs-progs 6.2).
 */
export const KERNEL_WRITE_SIZE: Readonly<Record<number, number>> = {
  1: 48 * 1024,
  2: 128 * 1024,
  3: 128 * 1024,
};

/**
 * Creates a sink that counts the bytes written to it.
 *
 * Contract: `result` resolves with the byte count once the input ended, and
 * rejects if the stream is destroyed first (AbortedError when `signal` aborts).
 */
export function countBytes(opts: StageOptions = {}): SinkStage<number> {
  let count = 0;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      count += chunk.length;
      callback();
    },
    writev(chunks, callback) {
      for (const c of chunks) count += (c.chunk as Buffer).length;
      callback();
    },
  });
  destroyOnAbort(stream, opts.signal);
  return sinkStage(
    'count-bytes',
    stream,
    streamDone(stream).then(() => count),
  );
}

/** Options of {@link noDataSizeProbe}. */
export interface NoDataSizeProbeOptions extends StageOptions {
  /**
   * Protocol version of the real send being estimated (its WRITE framing and
   * chunking). Default: the version of the probed stream; probe with the same
   * `--proto` as the real send.
   */
  version?: number;
  /** Data bytes per WRITE in the real stream. Default {@link KERNEL_WRITE_SIZE} for the version. */
  writeSize?: number;
}

/** A diff's size estimated from its `--no-data` stream. */
export interface SizeEstimate {
  /** Estimated size of the real stream, bytes. */
  bytes: number;
  /** Sum of the UPDATE_EXTENT sizes: the file data the real stream will carry. */
  dataBytes: number;
  /** Bytes of everything in the probed stream except UPDATE_EXTENT commands (stream headers included). */
  metadataBytes: number;
  /** Framing the data gets in the real stream: WRITE headers, PATH, FILE_OFFSET and DATA attribute headers. */
  writeOverheadBytes: number;
  /** UPDATE_EXTENT commands seen. */
  extents: number;
  /** WRITE commands the real stream is expected to have for them. */
  writes: number;
  /** Size of the probed `--no-data` stream. */
  probeBytes: number;
  /** Version assumed for the real stream. */
  version: number;
}

/**
 * Creates a sink that reads a `btrfs send --no-data` stream and estimates the
 * size of the same send with data: every command except UPDATE_EXTENT is
 * counted as is; each UPDATE_EXTENT of `size` bytes on `path` becomes
 * `ceil(size / writeSize)` WRITE commands of 10 (header) + 4 + |path| (PATH) +
 * 12 (FILE_OFFSET) + 4 (v1) or 2 (v2+) (DATA header) bytes plus the data.
 *
 * Compressed sends (`--compressed-data`, ENCODED_WRITE) carry compressed
 * extents whose size the probe cannot know: it estimates them uncompressed.
 *
 * Contract: the probed stream is fully verified (CRC, framing, END);
 * `result` resolves once the input ended, or rejects with a
 * StreamCorruptError (bad stream), an AbortedError (aborted) or a premature-close
 * error (destroyed).
 * @throws {UsageError} for invalid options.
 */
export function noDataSizeProbe(opts: NoDataSizeProbeOptions = {}): SinkStage<SizeEstimate> {
  checkProbeOptions(opts);
  let parser: SendStreamParser | undefined;
  const tally = new ExtentTally();
  const stream = new Writable({
    construct(callback) {
      createSendCrc().then(
        (crc) => {
          parser = new SendStreamParser({ crc, collect: (cmd) => cmd === Cmd.UPDATE_EXTENT });
          callback();
        },
        (err: unknown) => callback(err as Error),
      );
    },
    write(chunk: Buffer, _encoding, callback) {
      try {
        for (const e of parser!.push(chunk)) tally.add(e);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    final(callback) {
      try {
        parser!.end();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  destroyOnAbort(stream, opts.signal);
  const result = streamDone(stream).then(() => tally.estimate(parser!, opts));
  return sinkStage('no-data-size-probe', stream, result);
}

/** UsageError for a `version` or `writeSize` out of range. */
function checkProbeOptions(opts: NoDataSizeProbeOptions): void {
  if (
    opts.version !== undefined &&
    !(Number.isInteger(opts.version) && opts.version >= 1 && opts.version <= MAX_STREAM_VERSION)
  ) {
    throw new UsageError(`noDataSizeProbe: version must be 1–${MAX_STREAM_VERSION}`);
  }
  if (
    opts.writeSize !== undefined &&
    !(Number.isSafeInteger(opts.writeSize) && opts.writeSize > 0)
  ) {
    throw new UsageError('noDataSizeProbe: writeSize must be a positive integer');
  }
}

/** What the probed stream holds: its UPDATE_EXTENTs, and the bytes of everything else. */
class ExtentTally {
  private readonly updates: { size: bigint; pathLength: number }[] = [];
  private metadataBytes = 0;

  /** Counts one parser event. */
  add(e: SendStreamEvent): void {
    if (e.type === 'header') {
      this.metadataBytes += STREAM_HEADER_SIZE;
    } else if (e.cmd !== Cmd.UPDATE_EXTENT) {
      this.metadataBytes += COMMAND_HEADER_SIZE + e.length;
    } else {
      const path = e.attributes!.find((a) => a.type === Attr.PATH);
      const size = e.attributes!.find((a) => a.type === Attr.SIZE);
      this.updates.push({
        size: size?.value.length === 8 ? readU64(size.value) : 0n,
        pathLength: path?.value.length ?? 0,
      });
    }
  }

  /** The real stream's size: each extent as WRITEs of `writeSize`, with their framing. */
  estimate(p: SendStreamParser, opts: NoDataSizeProbeOptions): SizeEstimate {
    const version = opts.version ?? p.version;
    const writeSize = opts.writeSize ?? KERNEL_WRITE_SIZE[version]!;
    const dataHeader = version >= 2 ? 2 : TLV_HEADER_SIZE;
    let dataBytes = 0;
    let writes = 0;
    let writeOverheadBytes = 0;
    for (const u of this.updates) {
      const size = Number(u.size);
      const n = Math.max(1, Math.ceil(size / writeSize));
      dataBytes += size;
      writes += n;
      writeOverheadBytes +=
        n *
        (COMMAND_HEADER_SIZE + TLV_HEADER_SIZE + u.pathLength + TLV_HEADER_SIZE + 8 + dataHeader);
    }
    const { metadataBytes } = this;
    return {
      bytes: metadataBytes + dataBytes + writeOverheadBytes,
      dataBytes,
      metadataBytes,
      writeOverheadBytes,
      extents: this.updates.length,
      writes,
      probeBytes: p.offset,
      version,
    };
  }
}
