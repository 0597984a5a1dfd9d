/**
 * receive-guard: checks every command of a send stream that did not come from
 * this machine's own `btrfs send` before `btrfs receive` sees it. `btrfs
 * receive` runs as root, resolves every path of a stream below its
 * destination but follows `..` and symlinks, and looks parents and clone
 * sources up by UUID anywhere on the filesystem; this stage lets through only
 * a stream that creates the one announced snapshot, inside it:
 *
 * - `first-command`: the first command is a SUBVOL for an announced full diff,
 *   a SNAPSHOT for an announced incremental;
 * - `one-subvolume`: exactly one SUBVOL/SNAPSHOT, one stream (nothing after END);
 * - `target-uuid` / `parent-uuid`: it carries the announced UUID, and a
 *   SNAPSHOT the announced parent;
 * - `subvolume-name`: the subvolume's name is one component without control
 *   characters;
 * - `path`: every path attribute (path, path-to, LINK's link, clone path) is
 *   relative, non-empty (but for the root's own chown, chmod, utimes and
 *   xattrs), free of NUL and of `.`, `..` and empty components; control
 *   characters are file names' own business (a file may be called "a\nb");
 * - `symlink`: no path goes through a symlink, and no command that follows its
 *   last component (create, write, truncate, chmod, clone, fallocate, …) names
 *   a symlink, whether the stream made it or the parent snapshot holds it (the
 *   parent is looked up on disk when `parentRoot` is given);
 * - `clone-source`: a CLONE reads only from the new subvolume or the announced
 *   parent.
 * END is required (a StreamCorruptError otherwise). A command's memory is
 * bounded by the parser, never by its length field.
 *
 * Buffering/backpressure: chunks pass through unchanged (same Buffers); only a
 * command spanning chunks is joined (≤ the v2 command cap). Backpressure is
 * the Transform's own. Next to other parsing stages in a pipeline it shares
 * their parse (stream-pass.ts).
 */
import { lstatSync } from 'node:fs';
import { StreamRefusedError, UsageError } from '../errors.js';
import { Attr, Cmd, commandName } from '../btrfs/send-stream/constants.js';
import { passStage } from '../btrfs/send-stream/stream-pass.js';
import type { SendStreamPass } from '../btrfs/send-stream/stream-pass.js';
import { StreamTree } from '../btrfs/send-stream/stream-tree.js';
import type { EntryKind, ParentLookup } from '../btrfs/send-stream/stream-tree.js';
import type { CommandEvent } from '../btrfs/send-stream/types.js';
import { isUuid, uuidToString } from '../btrfs/send-stream/values.js';
import type { StageOptions, TransformStage } from '../streams/stage.js';

/** Options of {@link receiveGuard}. */
export interface ReceiveGuardOptions extends StageOptions {
  /** UUID the stream's one SUBVOL/SNAPSHOT must carry: the announced snapshot. */
  target: string;
  /** UUID of the announced incremental parent; absent for a full diff. */
  parent?: string;
  /**
   * Absolute path of the exact parent copy on this machine, to look up what
   * the new subvolume inherits (symlinks). Without it, inherited names count
   * as plain files: then only the receiver's confinement covers them.
   */
  parentRoot?: string;
  /**
   * Also verify the stream in the same parse, as stream-verify does: every
   * command's CRC, versions 1–2 only, and the END held back until the input
   * ended with nothing after it. Then no separate stream-verify is needed in
   * front (one parse instead of two). Default false: framing is checked, CRCs not.
   */
  verify?: boolean;
}

/** What {@link receiveGuard} saw. */
export interface ReceiveGuardResult {
  /** Commands checked. */
  commands: number;
  /** Bytes passed. */
  bytes: number;
}

/** Commands whose syscall in `btrfs receive` follows a symlink in the last component. */
const FOLLOWS_LAST = new Set<number>([
  Cmd.MKFILE,
  Cmd.WRITE,
  Cmd.CLONE,
  Cmd.TRUNCATE,
  Cmd.CHMOD,
  Cmd.UPDATE_EXTENT,
  Cmd.FALLOCATE,
  Cmd.FILEATTR,
  Cmd.ENCODED_WRITE,
  Cmd.ENABLE_VERITY,
]);

/** Commands the kernel sends with an empty path for the subvolume's root directory. */
const ON_ROOT = new Set<number>([
  Cmd.CHOWN,
  Cmd.CHMOD,
  Cmd.UTIMES,
  Cmd.SET_XATTR,
  Cmd.REMOVE_XATTR,
  Cmd.FILEATTR,
]);

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Creates the guard. Contract: output equals input; the stream fails with a
 * {@link StreamRefusedError} naming the rule and the command at the first
 * command that breaks a rule (before that command is passed on), and with a
 * StreamCorruptError when it is not a complete send stream (with `verify`, also
 * at the first command whose CRC is wrong, before it is passed on).
 * @throws {UsageError} when `target` or `parent` is not a UUID.
 */
export function receiveGuard(opts: ReceiveGuardOptions): TransformStage<ReceiveGuardResult> {
  if (!isUuid(opts.target)) throw new UsageError('receiveGuard: target must be a UUID');
  if (opts.parent !== undefined && !isUuid(opts.parent)) {
    throw new UsageError('receiveGuard: parent must be a UUID');
  }
  const target = opts.target.toLowerCase();
  const parent = opts.parent?.toLowerCase();
  const lookup = opts.parentRoot === undefined ? undefined : parentLookup(opts.parentRoot);
  const check = commandChecker(target, parent, lookup);
  const verify = opts.verify === true;
  let checked = 0;
  const pass: SendStreamPass<ReceiveGuardResult> = {
    verify: verify ? 'all' : 'none',
    ...(verify ? { maxVersion: 2 } : {}),
    reads: () => true,
    // Only checked commands pass: the one in progress waits until it is complete;
    // when verifying, a final END waits until the input ended with nothing after it.
    holds: () => true,
    holdsEnd: verify,
    header(_ev, streams) {
      if (streams > 1) throw refused('one-subvolume', checked, 'a second stream follows END');
    },
    command(ev) {
      check(ev);
      checked++;
      return undefined;
    },
    end: ({ commands, bytes }) => ({ commands, bytes }),
  };
  return passStage('receive-guard', pass, opts.signal);
}

function refused(rule: string, index: number, detail: string): StreamRefusedError {
  return new StreamRefusedError(`send stream refused (${rule}): command ${index} ${detail}`, {
    rule,
    commandIndex: index,
  });
}

/** Looks names up below the parent copy without following symlinks. */
function parentLookup(root: string): ParentLookup {
  const rootBytes = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  return (path) => {
    const full =
      path === '' ? rootBytes : Buffer.concat([rootBytes, SLASH, Buffer.from(path, 'latin1')]);
    let st;
    try {
      st = lstatSync(full, { throwIfNoEntry: false });
    } catch (err) {
      // A name too long (or not a directory on the way) is nothing the parent holds.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENAMETOOLONG' || code === 'ENOTDIR' || code === 'ELOOP') return 'absent';
      throw err;
    }
    if (!st) return 'absent';
    return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'other';
  };
}

const SLASH = Buffer.from('/');

/** The value of attribute `type` of a command (a handful each: a scan beats a Map). */
function attr(ev: CommandEvent, type: number): Buffer | undefined {
  const list = ev.attributes;
  if (!list) return undefined;
  for (const a of list) if (a.type === type) return a.value;
  return undefined;
}

function uuidOf(ev: CommandEvent, type: number): string | undefined {
  const v = attr(ev, type);
  return v?.length === 16 ? uuidToString(v) : undefined;
}

/** `(write)`: a command as messages name it (built only for a refusal). */
function label(ev: CommandEvent): string {
  return `(${commandName(ev.cmd)})`;
}

/** The per-command check, with the tree it keeps. Allocation-light: it runs on every command. */
function commandChecker(
  target: string,
  parent: string | undefined,
  lookup: ParentLookup | undefined,
): (ev: CommandEvent) => void {
  let tree: StreamTree | undefined;
  const parentTree = new StreamTree(lookup);
  return (ev) => {
    if (!tree) {
      checkFirst(ev, target, parent);
      tree = new StreamTree(ev.cmd === Cmd.SNAPSHOT ? lookup : undefined);
      return;
    }
    checkCommand(ev, tree, target, parent, parentTree);
  };
}

/** The stream's first command: the announced SUBVOL or SNAPSHOT. */
function checkFirst(ev: CommandEvent, target: string, parent: string | undefined): void {
  const want = parent === undefined ? Cmd.SUBVOL : Cmd.SNAPSHOT;
  if (ev.cmd !== want) {
    throw refused(
      'first-command',
      ev.index,
      `${label(ev)}: the stream must start with ${commandName(want)} for ${parent === undefined ? 'a full' : 'an incremental'} diff`,
    );
  }
  const uuid = uuidOf(ev, Attr.UUID);
  if (uuid !== target) {
    throw refused(
      'target-uuid',
      ev.index,
      `${label(ev)} creates ${uuid ?? '?'}, not the announced ${target}`,
    );
  }
  if (ev.cmd === Cmd.SNAPSHOT) {
    const from = uuidOf(ev, Attr.CLONE_UUID);
    if (from !== parent) {
      throw refused(
        'parent-uuid',
        ev.index,
        `${label(ev)} is based on ${from ?? '?'}, not the announced parent ${parent}`,
      );
    }
  }
  checkSubvolumeName(attr(ev, Attr.PATH), ev);
}

/** Every later command: paths, symlinks, clone sources; then records what it changes. */
function checkCommand(
  ev: CommandEvent,
  t: StreamTree,
  target: string,
  parent: string | undefined,
  parentTree: StreamTree,
): void {
  if (ev.cmd === Cmd.SUBVOL || ev.cmd === Cmd.SNAPSHOT) {
    throw refused('one-subvolume', ev.index, `${label(ev)}: a stream creates one subvolume`);
  }
  if (ev.cmd === Cmd.END) return;
  const at =
    ON_ROOT.has(ev.cmd) && attr(ev, Attr.PATH)?.length === 0 ? [] : path(ev, Attr.PATH, 'path');
  const resolved = t.resolve(at);
  noSymlinkOnTheWay(resolved.blockedAt, ev, 'path');
  if (resolved.kind === 'symlink' && FOLLOWS_LAST.has(ev.cmd)) {
    throw refused('symlink', ev.index, `${label(ev)} would write through symlink ${show(at)}`);
  }
  switch (ev.cmd) {
    case Cmd.MKFILE:
    case Cmd.MKNOD:
    case Cmd.MKFIFO:
    case Cmd.MKSOCK:
      t.create(at, 'other');
      break;
    case Cmd.MKDIR:
      t.create(at, 'dir');
      break;
    case Cmd.SYMLINK:
      t.create(at, 'symlink');
      break;
    case Cmd.RENAME: {
      const to = path(ev, Attr.PATH_TO, 'path_to');
      noSymlinkOnTheWay(t.resolve(to).blockedAt, ev, 'path_to');
      t.rename(at, to);
      break;
    }
    case Cmd.LINK: {
      const link = path(ev, Attr.PATH_LINK, 'path_link');
      noSymlinkOnTheWay(t.resolve(link).blockedAt, ev, 'path_link');
      t.link(at, link);
      break;
    }
    case Cmd.UNLINK:
    case Cmd.RMDIR:
      t.remove(at);
      break;
    case Cmd.CLONE: {
      const source = uuidOf(ev, Attr.CLONE_UUID);
      const from = path(ev, Attr.CLONE_PATH, 'clone_path');
      const fromTree =
        source === target ? t : source !== undefined && source === parent ? parentTree : undefined;
      if (!fromTree) {
        throw refused(
          'clone-source',
          ev.index,
          `${label(ev)} reads from subvolume ${source ?? '?'}, neither this snapshot nor its announced parent`,
        );
      }
      const r = fromTree.resolve(from);
      noSymlinkOnTheWay(r.blockedAt, ev, 'clone_path');
      if (r.kind === 'symlink') {
        throw refused('symlink', ev.index, `${label(ev)} would read through symlink ${show(from)}`);
      }
      break;
    }
    default:
      break;
  }
}

/** A path attribute, checked and split. */
function path(ev: CommandEvent, type: number, name: string): string[] {
  const value = attr(ev, type);
  if (value === undefined) throw refused('path', ev.index, `${label(ev)} lacks its ${name}`);
  return checkPath(value, ev, name);
}

function noSymlinkOnTheWay(
  blocked: { path: string; kind: EntryKind } | undefined,
  ev: CommandEvent,
  name: string,
): void {
  if (blocked?.kind === 'symlink') {
    throw refused(
      'symlink',
      ev.index,
      `${label(ev)} ${name} goes through symlink ${JSON.stringify(blocked.path)}`,
    );
  }
}

/** Splits a path attribute into components (latin1: bytes kept), refusing what could leave the subvolume. */
function checkPath(value: Buffer, ev: CommandEvent, name: string): string[] {
  const fail = (why: string) => refused('path', ev.index, `${label(ev)} ${name} ${why}`);
  if (value.length === 0) throw fail('is empty');
  const text = value.toString('latin1');
  if (value.indexOf(0) >= 0) throw fail(`${show([text])} contains NUL`);
  if (text.charCodeAt(0) === 0x2f) throw fail(`${show([text])} is absolute`);
  const parts = text.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') {
      throw fail(`${show(parts)} has a '${p}' component`);
    }
  }
  return parts;
}

function checkSubvolumeName(value: Buffer | undefined, ev: CommandEvent): void {
  const name = value?.toString('utf8') ?? '';
  if (name === '' || name === '.' || name === '..' || name.includes('/') || CONTROL.test(name)) {
    throw refused(
      'subvolume-name',
      ev.index,
      `${label(ev)} names the subvolume ${JSON.stringify(name.slice(0, 100))}: one path component without control characters required`,
    );
  }
}

function show(parts: readonly string[]): string {
  return JSON.stringify(Buffer.from(parts.join('/'), 'latin1').toString('utf8').slice(0, 200));
}
