/**
 * clone-to-write: turns each CLONE whose source is the incremental parent into
 * WRITE commands carrying the same bytes, read from the exact parent copy on
 * this machine. `btrfs receive` looks a clone source up by received UUID
 * only, first match on the whole filesystem; when another subvolume shares
 * the parent's received UUID (an old restore, a decoy) it could clone from
 * that one. Writing the bytes instead makes the result exact, at the price of
 * the shared extents (the receiver stores them anew).
 *
 * The CLONE's own CRC is checked before it is replaced, so corruption is
 * never laundered. Its clone path must already be safe (run receive-guard
 * first); the file is opened without following a symlink in its last
 * component, and the parent is read-only.
 *
 * Buffering/backpressure: a CLONE (a few hundred bytes) is held until
 * complete; other bytes pass as slices of the input. The replacement is read
 * and pushed 48 KiB at a time, waiting for the consumer whenever the readable
 * side is full, so a clone of any length holds at most a few WRITEs.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { StreamCorruptError, UsageError } from '../errors.js';
import { ByteQueue } from '../btrfs/send-stream/byte-queue.js';
import { Attr, COMMAND_HEADER_SIZE, Cmd } from '../btrfs/send-stream/constants.js';
import { createSendCrc } from '../btrfs/send-stream/crc.js';
import type { SendCrc } from '../btrfs/send-stream/crc.js';
import { SendStreamParser } from '../btrfs/send-stream/parser.js';
import { parsingStage } from '../btrfs/send-stream/parsing-transform.js';
import { serializeCommand } from '../btrfs/send-stream/serialize.js';
import type { CommandEvent } from '../btrfs/send-stream/types.js';
import { isUuid, readU64, uuidToString, writeU64 } from '../btrfs/send-stream/values.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** Options of {@link cloneToWrite}. */
export interface CloneToWriteOptions extends StageOptions {
  /** UUID CLONE commands name the parent by (the diff's `from` effective UUID). */
  parent: string;
  /** Absolute path of the exact parent copy on this machine. */
  parentRoot: string;
}

/** What {@link cloneToWrite} did. */
export interface CloneToWriteResult {
  /** CLONE commands replaced. */
  clones: number;
  /** Bytes read from the parent into WRITEs. */
  bytes: number;
}

/** Data per WRITE, as the kernel sends (BTRFS_SEND_READ_SIZE): fits any v1 command with a path. */
const WRITE_SIZE = 48 * 1024;

/**
 * Creates the stage. Contract: output equals input except that every CLONE
 * from `parent` is replaced by WRITEs of the same range's bytes at the same
 * offsets; a CLONE failing its CRC, or whose range cannot be read whole from
 * the parent, fails the stream.
 * @throws {UsageError} when `parent` is not a UUID or `parentRoot` is empty.
 */
export function cloneToWrite(opts: CloneToWriteOptions): TransformStage<CloneToWriteResult> {
  if (!isUuid(opts.parent)) throw new UsageError('cloneToWrite: parent must be a UUID');
  if (!opts.parentRoot) throw new UsageError('cloneToWrite: parentRoot must be a path');
  const parent = opts.parent.toLowerCase();
  const replacer = new CloneReplacer(
    Buffer.from(opts.parentRoot.replace(/\/+$/, '') + '/', 'utf8'),
  );
  const queue = new ByteQueue();
  let parser: SendStreamParser | undefined;
  const stream = new Transform({
    construct(callback) {
      Promise.all([createSendCrc(), createSendCrc()]).then(([parserCrc, writeCrc]) => {
        replacer.crc = writeCrc;
        parser = new SendStreamParser({
          crc: parserCrc,
          verify: 'collected',
          collect: (cmd) => cmd === Cmd.CLONE,
        });
        callback();
      }, callback);
    },
    read(size) {
      replacer.resume();
      Transform.prototype._read.call(this, size);
    },
    transform(chunk: Buffer, _encoding, callback) {
      (async () => {
        const p = parser!;
        queue.push(chunk);
        for (const e of p.push(chunk)) {
          if (e.type !== 'command' || e.cmd !== Cmd.CLONE || !e.attributes) continue;
          const source = e.attributes.find((a) => a.type === Attr.CLONE_UUID)?.value;
          if (source?.length !== 16 || uuidToString(source) !== parent) continue;
          for (const slice of queue.take(e.offset)) stream.push(slice);
          queue.drop(e.offset + COMMAND_HEADER_SIZE + e.length);
          await replacer.replace(e);
        }
        // Hold back a CLONE not yet complete (or a header not yet read).
        const pending = p.pendingCommand;
        const hold = p.boundary < p.offset && (pending === undefined || pending === Cmd.CLONE);
        for (const slice of queue.take(hold ? p.boundary : p.offset)) stream.push(slice);
      })().then(() => callback(), callback);
    },
    flush(callback) {
      try {
        parser!.end();
        for (const slice of queue.take(queue.end)) stream.push(slice);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  replacer.stream = stream;
  return parsingStage('clone-to-write', stream, opts.signal, () => replacer.result);
}

/** A CLONE's attributes: the file written, its offset, and the source range. */
interface CloneRange {
  path: Buffer;
  clonePath: Buffer;
  offset: number;
  length: number;
  from: number;
}

/** Reads a CLONE's attributes; StreamCorruptError when one is missing or malformed. */
function cloneRange(e: CommandEvent): CloneRange {
  const attr = (type: number) => e.attributes!.find((a) => a.type === type)?.value;
  const path = attr(Attr.PATH);
  const clonePath = attr(Attr.CLONE_PATH);
  const numbers = [Attr.FILE_OFFSET, Attr.CLONE_LEN, Attr.CLONE_OFFSET].map((t) => attr(t));
  if (!path || !clonePath || numbers.some((v) => v?.length !== 8)) {
    throw new StreamCorruptError(
      `send stream corrupt at byte ${e.offset}: command ${e.index} (clone) lacks its attributes`,
      { commandIndex: e.index, offset: e.offset },
    );
  }
  const [offset, length, from] = numbers.map((v) => Number(readU64(v!))) as [
    number,
    number,
    number,
  ];
  return { path, clonePath, offset, length, from };
}

/** Opens the clone source in the parent copy, never following a symlink in its last component. */
async function openCloneSource(
  root: Buffer,
  clonePath: Buffer,
  e: CommandEvent,
): Promise<FileHandle> {
  try {
    return await open(Buffer.concat([root, clonePath]), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new StreamCorruptError(
      `send stream command ${e.index} clones from ${JSON.stringify(clonePath.toString())}, which the parent copy lacks: ${(err as Error).message}`,
      { commandIndex: e.index, offset: e.offset },
      { cause: err },
    );
  }
}

/** Replaces CLONEs by WRITEs read from the parent copy, pushed at the consumer's pace. */
class CloneReplacer {
  readonly result: CloneToWriteResult = { clones: 0, bytes: 0 };
  /** Set by the stage's construct, before the first command: CRC engine for the WRITEs. */
  crc: SendCrc | undefined;
  /** Set right after construction: the stream the WRITEs are pushed to. */
  stream!: Transform;
  /** Resolves when the consumer asks for more (the readable side drained). */
  private wantMore: (() => void) | undefined;

  constructor(private readonly root: Buffer) {}

  /** Called from the stream's `read`: a paced push waiting for room goes on. */
  resume(): void {
    const resume = this.wantMore;
    this.wantMore = undefined;
    resume?.();
  }

  /** Pushes the WRITEs carrying the CLONE's bytes in place of the CLONE. */
  async replace(e: CommandEvent): Promise<void> {
    const range = cloneRange(e);
    const file = await openCloneSource(this.root, range.clonePath, e);
    try {
      await this.writeRange(file, range, e);
    } finally {
      await file.close();
    }
    this.result.clones++;
  }

  /** Reads the range from `file`, WRITE_SIZE at a time, each pushed as one WRITE. */
  private async writeRange(file: FileHandle, range: CloneRange, e: CommandEvent): Promise<void> {
    const { path, clonePath, offset, length, from } = range;
    const size = (await file.stat()).size;
    const want = Math.max(0, Math.min(length, size - from));
    const buf = Buffer.allocUnsafe(WRITE_SIZE);
    for (let done = 0; done < want;) {
      const n = Math.min(WRITE_SIZE, want - done);
      const { bytesRead } = await file.read(buf, 0, n, from + done);
      if (bytesRead !== n) {
        throw new StreamCorruptError(
          `send stream command ${e.index}: the parent copy's ${JSON.stringify(clonePath.toString())} ended while cloning`,
          { commandIndex: e.index, offset: e.offset },
        );
      }
      const write = serializeCommand(
        Cmd.WRITE,
        [
          { type: Attr.PATH, value: path },
          { type: Attr.FILE_OFFSET, value: writeU64(offset + done) },
          { type: Attr.DATA, value: buf.subarray(0, n) },
        ],
        e.version,
        this.crc!,
      );
      done += n;
      this.result.bytes += n;
      await this.pushPaced(write);
    }
  }

  private async pushPaced(bytes: Buffer): Promise<void> {
    if (this.stream.push(bytes)) return;
    await new Promise<void>((resolve) => (this.wantMore = resolve));
  }
}
