/**
 * subvolume-guard: the server's check that a stream a client pushes only
 * creates the one snapshot it announced and only refers to snapshots inside
 * the served directory. `btrfs receive` looks incremental parents and clone
 * sources up by UUID anywhere on the filesystem, so without this a client
 * allowed to receive could clone data out of any subvolume it can name.
 *
 * Buffering/backpressure: chunks pass through unchanged (same Buffers); the
 * parser copies only a SUBVOL, SNAPSHOT or CLONE command that spans chunks (a
 * few hundred bytes). Backpressure is the Transform's own.
 */
import { Transform } from 'node:stream';
import { Attr, Cmd } from '../btrfs/send-stream/constants.js';
import { SendStreamParser } from '../btrfs/send-stream/parser.js';
import type { CommandEvent } from '../btrfs/send-stream/types.js';
import { uuidToString } from '../btrfs/send-stream/values.js';
import { UsageError } from '../errors.js';
import { destroyOnAbort, transformStage } from '../streams/stage.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';
import { ServerRefusal, isWireUuid } from './protocol.js';

/** Options of {@link subvolumeGuard}. */
export interface SubvolumeGuardOptions extends StageOptions {
  /** UUID the stream's one SUBVOL/SNAPSHOT must carry (the announced snapshot). */
  target: string;
  /** UUIDs an incremental parent or clone source may have: the served snapshots' UUIDs and own UUIDs. */
  allowed: ReadonlySet<string>;
}

function attrUuid(ev: CommandEvent, type: number): string | undefined {
  const a = ev.attributes?.find((x) => x.type === type);
  return a && a.value.length === 16 ? uuidToString(a.value) : undefined;
}

/**
 * Creates the guard. Contract: output equals input; the stream fails with a
 * ServerRefusal (`STREAM_REFUSED`) when it holds more than one SUBVOL/SNAPSHOT,
 * when that command's UUID is not `target`, or when a SNAPSHOT parent or CLONE
 * source is neither in `allowed` nor `target`; and with a StreamCorruptError
 * when it is not a complete send stream.
 * @throws {UsageError} when `target` is not a UUID.
 */
export function subvolumeGuard(opts: SubvolumeGuardOptions): TransformStage<void> {
  if (!isWireUuid(opts.target)) throw new UsageError('subvolumeGuard: target must be a UUID');
  const parser = new SendStreamParser({
    verify: 'none',
    collect: (cmd) => cmd === Cmd.SUBVOL || cmd === Cmd.SNAPSHOT || cmd === Cmd.CLONE,
  });
  let subvolumes = 0;
  const refuse = (message: string) => new ServerRefusal('STREAM_REFUSED', message);
  const check = (ev: CommandEvent) => {
    if (ev.cmd === Cmd.SUBVOL || ev.cmd === Cmd.SNAPSHOT) {
      subvolumes += 1;
      if (subvolumes > 1) throw refuse('stream creates more than one subvolume');
      const uuid = attrUuid(ev, Attr.UUID);
      if (uuid !== opts.target) {
        throw refuse(`stream creates subvolume ${uuid ?? '?'}, not the announced ${opts.target}`);
      }
    }
    if (ev.cmd === Cmd.SNAPSHOT || ev.cmd === Cmd.CLONE) {
      const source = attrUuid(ev, Attr.CLONE_UUID);
      if (source === undefined || (source !== opts.target && !opts.allowed.has(source))) {
        throw refuse(
          `stream refers to subvolume ${source ?? '?'}, which is not a snapshot in the served directory`,
        );
      }
    }
  };
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        for (const ev of parser.push(chunk)) if (ev.type === 'command') check(ev);
      } catch (err) {
        cb(err as Error);
        return;
      }
      cb(null, chunk);
    },
    flush(cb) {
      try {
        parser.end();
      } catch (err) {
        cb(err as Error);
        return;
      }
      cb();
    },
  });
  destroyOnAbort(stream, opts.signal);
  return transformStage('subvolume-guard', stream);
}
