/**
 * uuid-rewrite: gives the subvolumes a send stream creates the identity the
 * diff has in buttersink (effective UUID and generation), so that every copy of
 * a snapshot keeps one `received_uuid` and can serve as a parent anywhere.
 *
 * One old→new mapping is applied to every UUID the stream names: SUBVOL and
 * SNAPSHOT (UUID, CTRANSID), SNAPSHOT's parent (CLONE_UUID, CLONE_CTRANSID) and
 * every CLONE's source (CLONE_UUID, CLONE_CTRANSID). Changed commands get a new
 * CRC; their own CRC is checked first, so corruption is never laundered.
 *
 * Buffering and backpressure: only the commands that may change (SUBVOL,
 * SNAPSHOT, CLONE: a few hundred bytes each) and an incomplete command header
 * are held back until complete; every other byte passes through as slices of
 * the input chunks, unparsed and uncopied. Backpressure is the Transform's own.
 * Commands other than those three are not CRC-checked here: add stream-verify
 * for that. Next to other parsing stages in a pipeline it shares their parse
 * (stream-pass.ts): the stages behind it see the rewritten commands.
 */
import { StreamCorruptError, UsageError } from '../errors.js';
import { Attr, COMMAND_HEADER_SIZE, Cmd, commandName } from '../btrfs/send-stream/constants.js';
import { createSendCrc } from '../btrfs/send-stream/crc.js';
import type { SendCrc } from '../btrfs/send-stream/crc.js';
import { checkMaxCommandLength } from '../btrfs/send-stream/parsing-transform.js';
import { serializeCommand } from '../btrfs/send-stream/serialize.js';
import { passStage } from '../btrfs/send-stream/stream-pass.js';
import type { RewrittenCommand, SendStreamPass } from '../btrfs/send-stream/stream-pass.js';
import type { CommandEvent, SendAttribute } from '../btrfs/send-stream/types.js';
import {
  isUuid,
  readString,
  readU64,
  uuidFromString,
  uuidToString,
  writeU64,
} from '../btrfs/send-stream/values.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** The identity a subvolume has (or is given) in a stream. */
export interface SubvolumeIdentity {
  /** UUID, `8-4-4-4-12` hex. */
  readonly uuid: string;
  /** Generation (ctransid) written with the UUID. Default: keep the stream's. */
  readonly ctransid?: bigint | number;
}

/** Options of {@link uuidRewrite}. */
export interface UuidRewriteOptions extends StageOptions {
  /**
   * Identity for the subvolume the stream creates (its first SUBVOL or
   * SNAPSHOT): the diff's `to` effective UUID and generation. The receiver
   * records it as the new subvolume's received UUID and stransid.
   */
  target?: SubvolumeIdentity;
  /**
   * Identity of the incremental parent (the first SNAPSHOT's CLONE_UUID and
   * CLONE_CTRANSID): the diff's `from` effective UUID and generation, which the
   * receiver looks up among its subvolumes' received UUIDs. Ignored for a full
   * stream (SUBVOL).
   */
  parent?: SubvolumeIdentity;
  /**
   * Further old UUID → identity pairs, for multi-subvolume streams and `-c`
   * clone sources. `target` and `parent` add the pairs they learn from the first
   * command (stream UUID → target, stream parent UUID → parent) to this one map;
   * a pair contradicting an entry here fails the stream with a UsageError.
   */
  map?: ReadonlyMap<string, SubvolumeIdentity> | Readonly<Record<string, SubvolumeIdentity>>;
  /**
   * New name (PATH) for the subvolume the stream creates (its first SUBVOL or
   * SNAPSHOT). A receiver creates it under this name, so a store can receive
   * into a staging name and rename it when complete. One path component: no
   * `/`, not `.` or `..`. Default: keep the stream's.
   */
  subvolumeName?: string;
  /**
   * UUID written as the parent of the stream's SNAPSHOT (its CLONE_UUID) and
   * nowhere else: the own UUID of the exact parent copy at the destination.
   * `btrfs receive` finds a parent by received UUID, then by UUID, anywhere on
   * the filesystem; a copy's own UUID names that copy alone. CLONE sources keep
   * the mapped UUID (the receiver looks them up by received UUID only).
   */
  pinParent?: string;
  /** Largest command payload accepted in v2+ streams, bytes. Default 16 MiB. */
  maxCommandLength?: number;
}

/** One SUBVOL or SNAPSHOT of the stream, as written to the output. */
export interface RewrittenSubvolume {
  /** Index of its command in the stream. */
  readonly index: number;
  /** Path (name) the stream gives it. */
  readonly path: string;
  /** UUID and generation in the input. */
  readonly from: { uuid: string; ctransid: bigint };
  /** UUID and generation in the output. */
  readonly to: { uuid: string; ctransid: bigint };
  /** For SNAPSHOT: the parent in the input and in the output. */
  readonly parent?: {
    readonly from: { uuid: string; ctransid: bigint };
    readonly to: { uuid: string; ctransid: bigint };
  };
}

/** What {@link uuidRewrite} did. */
export interface UuidRewriteResult {
  /** Bytes read (output size equals it unless `subvolumeName` changed the name's length). */
  bytes: number;
  /** Commands seen. */
  commands: number;
  /** Commands whose bytes changed (re-serialized with a new CRC). */
  rewritten: number;
  /** CLONE commands whose source was rewritten. */
  clonesRewritten: number;
  /** Each SUBVOL/SNAPSHOT of the stream, in order. */
  subvolumes: RewrittenSubvolume[];
}

interface Identity {
  uuid: Buffer;
  ctransid: Buffer | undefined;
}

/**
 * Creates the UUID-rewriting transform.
 *
 * Contract: output bytes equal input bytes except inside commands whose UUID
 * or ctransid fields changed, which are re-serialized with a new CRC (same
 * length). A command that would change but fails its own CRC errors the stream
 * with a StreamCorruptError. A mapping that contradicts itself errors it with a
 * UsageError. With no options set, the stream passes unchanged.
 * @throws {UsageError} for an invalid UUID or ctransid in the options.
 */
export function uuidRewrite(opts: UuidRewriteOptions = {}): TransformStage<UuidRewriteResult> {
  const rewriter = new UuidRewriter(checkOptions(opts));
  const maxCommandLength = checkMaxCommandLength('uuidRewrite', opts.maxCommandLength);
  const pass: SendStreamPass<UuidRewriteResult> = {
    // A command that may change is CRC-checked first, so corruption is never laundered.
    verify: 'collected',
    reads: mayChange,
    // Hold back a command that may change, or a header not yet complete.
    holds: (cmd) => cmd === undefined || mayChange(cmd),
    ...(maxCommandLength === undefined ? {} : { maxCommandLength }),
    setup: async () => {
      rewriter.crc = await createSendCrc();
    },
    command: (ev) => rewriter.rewrite(ev),
    end: (totals) => {
      rewriter.summary.bytes = totals.bytes;
      rewriter.summary.commands = totals.commands;
      return rewriter.summary;
    },
  };
  return passStage('uuid-rewrite', pass, opts.signal);
}

/** The commands this stage may change: SUBVOL, SNAPSHOT, CLONE. */
function mayChange(cmd: number): boolean {
  return cmd === Cmd.SUBVOL || cmd === Cmd.SNAPSHOT || cmd === Cmd.CLONE;
}

/** The options of {@link uuidRewrite}, checked and decoded. */
interface RewriteSettings {
  target: Identity | undefined;
  parent: Identity | undefined;
  /** Old UUID (lower-case string) → identity; grows with what the first command teaches. */
  mapping: Map<string, Identity>;
  newName: string | undefined;
  pinned: Buffer | undefined;
}

/** Checks and decodes the options; UsageError for an invalid one. */
function checkOptions(opts: UuidRewriteOptions): RewriteSettings {
  const target = opts.target && toIdentity(opts.target, 'target');
  const parent = opts.parent && toIdentity(opts.parent, 'parent');
  const mapping = new Map<string, Identity>();
  const entries = opts.map instanceof Map ? [...opts.map] : Object.entries(opts.map ?? {});
  for (const [from, to] of entries) {
    if (!isUuid(from))
      throw new UsageError(`uuidRewrite: map key is not a UUID: ${JSON.stringify(from)}`);
    mapping.set(from.toLowerCase(), toIdentity(to, `map[${from}]`));
  }
  const newName = opts.subvolumeName;
  if (
    newName !== undefined &&
    (newName === '' || newName === '.' || newName === '..' || /[/\0]/.test(newName))
  ) {
    throw new UsageError(
      `uuidRewrite: subvolumeName must be one path component, got ${JSON.stringify(newName)}`,
    );
  }
  if (opts.pinParent !== undefined && !isUuid(opts.pinParent)) {
    throw new UsageError('uuidRewrite: pinParent must be a UUID');
  }
  const pinned = opts.pinParent === undefined ? undefined : uuidFromString(opts.pinParent);
  return { target, parent, mapping, newName, pinned };
}

/** The UUID attributes of a SUBVOL, SNAPSHOT or CLONE, checked to be 16 bytes. */
function commandUuids(e: CommandEvent): { own: SendAttribute; cloneUuid?: SendAttribute } {
  const attrs = e.attributes!;
  const isSubvol = e.cmd === Cmd.SUBVOL || e.cmd === Cmd.SNAPSHOT;
  const own = attrs.find((a) => a.type === (isSubvol ? Attr.UUID : Attr.CLONE_UUID));
  const cloneUuid =
    e.cmd === Cmd.SNAPSHOT ? attrs.find((a) => a.type === Attr.CLONE_UUID) : undefined;
  if (
    !own ||
    own.value.length !== 16 ||
    (e.cmd === Cmd.SNAPSHOT && cloneUuid?.value.length !== 16)
  ) {
    throw new StreamCorruptError(
      `send stream corrupt at byte ${e.offset}: command ${e.index} (${commandName(e.cmd)}) lacks a 16-byte UUID`,
      { commandIndex: e.index, offset: e.offset },
    );
  }
  return cloneUuid ? { own, cloneUuid } : { own };
}

/** The mapping and what was rewritten so far; decides each command's new bytes. */
class UuidRewriter {
  readonly summary: UuidRewriteResult = {
    bytes: 0,
    commands: 0,
    rewritten: 0,
    clonesRewritten: 0,
    subvolumes: [],
  };
  /** Set by the stage's setup, before the first command: CRC engine for re-serializing. */
  crc: SendCrc | undefined;
  private firstSeen = false;

  constructor(private readonly settings: RewriteSettings) {}

  /** Returns the command rewritten, or undefined when nothing changes. */
  rewrite(e: CommandEvent): RewrittenCommand | undefined {
    const attrs = e.attributes!;
    const isSubvol = e.cmd === Cmd.SUBVOL || e.cmd === Cmd.SNAPSHOT;
    const { own, cloneUuid } = commandUuids(e);
    const replace = new Map<number, Buffer>();
    if (isSubvol && !this.firstSeen) {
      this.firstSeen = true;
      this.learnFirst(e, own, cloneUuid, replace);
    }
    this.plan(attrs, own, isSubvol ? Attr.CTRANSID : Attr.CLONE_CTRANSID, replace);
    if (cloneUuid) this.plan(attrs, cloneUuid, Attr.CLONE_CTRANSID, replace);
    const { pinned } = this.settings;
    if (pinned && e.cmd === Cmd.SNAPSHOT && !pinned.equals(cloneUuid!.value)) {
      replace.set(Attr.CLONE_UUID, pinned);
    }
    if (isSubvol) this.summary.subvolumes.push(describeSubvolume(e, replace));
    if (replace.size === 0) return undefined;
    if (e.cmd === Cmd.CLONE) this.summary.clonesRewritten++;
    this.summary.rewritten++;
    const next = attrs.map((a) => {
      const value = replace.get(a.type);
      return value ? { type: a.type, value } : a;
    });
    const bytes = serializeCommand(e.cmd, next, e.version, this.crc!);
    const event: CommandEvent = {
      ...e,
      length: bytes.length - COMMAND_HEADER_SIZE,
      crc: bytes.readUInt32LE(6),
      payload: bytes.subarray(COMMAND_HEADER_SIZE),
      attributes: next,
    };
    return { event, bytes };
  }

  /** The first SUBVOL/SNAPSHOT: its UUID maps to `target`, its parent's to `parent`; renamed. */
  private learnFirst(
    e: CommandEvent,
    own: SendAttribute,
    cloneUuid: SendAttribute | undefined,
    replace: Map<number, Buffer>,
  ): void {
    const { target, parent, newName } = this.settings;
    this.learn(own.value, target, 'subvolume', e.index);
    if (cloneUuid) this.learn(cloneUuid.value, parent, 'parent', e.index);
    const path = e.attributes!.find((a) => a.type === Attr.PATH);
    if (newName !== undefined && path && readString(path.value) !== newName) {
      replace.set(Attr.PATH, Buffer.from(newName, 'utf8'));
    }
  }

  /** Adds old → identity to the mapping; UsageError when the map says otherwise. */
  private learn(old: Buffer, identity: Identity | undefined, role: string, index: number): void {
    if (!identity) return;
    const key = uuidToString(old);
    const known = this.settings.mapping.get(key);
    if (known && !sameIdentity(known, identity)) {
      throw new UsageError(
        `uuidRewrite: command ${index} names ${key} as the ${role}, which the map already sends to ` +
          `${uuidToString(known.uuid)}, not ${uuidToString(identity.uuid)}`,
      );
    }
    this.settings.mapping.set(key, identity);
  }

  /** Records in `replace` the new UUID and ctransid the mapping gives `uuidAttr`, if any. */
  private plan(
    attrs: readonly SendAttribute[],
    uuidAttr: SendAttribute,
    transType: number,
    replace: Map<number, Buffer>,
  ): void {
    const to = this.settings.mapping.get(uuidToString(uuidAttr.value));
    if (!to) return;
    if (!to.uuid.equals(uuidAttr.value)) replace.set(uuidAttr.type, to.uuid);
    const trans = attrs.find((a) => a.type === transType);
    if (to.ctransid && trans && !to.ctransid.equals(trans.value))
      replace.set(transType, to.ctransid);
  }
}

function toIdentity(id: SubvolumeIdentity, what: string): Identity {
  if (typeof id !== 'object' || id === null || typeof id.uuid !== 'string' || !isUuid(id.uuid)) {
    throw new UsageError(`uuidRewrite: ${what}.uuid must be a UUID`);
  }
  let ctransid: Buffer | undefined;
  if (id.ctransid !== undefined) {
    try {
      ctransid = writeU64(id.ctransid);
    } catch {
      throw new UsageError(`uuidRewrite: ${what}.ctransid must be an integer 0–2^64-1`);
    }
  }
  return { uuid: uuidFromString(id.uuid), ctransid };
}

/** Same UUID, and the same ctransid where both set one. */
function sameIdentity(a: Identity, b: Identity): boolean {
  if (!a.uuid.equals(b.uuid)) return false;
  return !a.ctransid || !b.ctransid || a.ctransid.equals(b.ctransid);
}

function describeSubvolume(e: CommandEvent, replace: Map<number, Buffer>): RewrittenSubvolume {
  const attrs = e.attributes!;
  const value = (type: number) => attrs.find((a) => a.type === type)?.value;
  const pair = (uuidType: number, transType: number) => {
    const uuid = value(uuidType)!;
    const trans = value(transType);
    const ctransid = trans?.length === 8 ? readU64(trans) : 0n;
    const newTrans = replace.get(transType);
    return {
      from: { uuid: uuidToString(uuid), ctransid },
      to: {
        uuid: uuidToString(replace.get(uuidType) ?? uuid),
        ctransid: newTrans ? readU64(newTrans) : ctransid,
      },
    };
  };
  const own = pair(Attr.UUID, Attr.CTRANSID);
  const path = value(Attr.PATH);
  const base = { index: e.index, path: path ? readString(path) : '', from: own.from, to: own.to };
  return e.cmd === Cmd.SNAPSHOT
    ? { ...base, parent: pair(Attr.CLONE_UUID, Attr.CLONE_CTRANSID) }
    : base;
}
