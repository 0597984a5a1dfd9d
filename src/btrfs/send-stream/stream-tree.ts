/**
 * A model of the directory tree a send stream builds, kept by the receive
 * guard to know, before `btrfs receive` applies a command, whether any
 * component of its path is a symlink (which the receiver's syscalls would
 * follow out of the new subvolume).
 *
 * The tree of a full stream starts empty; the tree of an incremental starts as
 * the parent snapshot, which is read-only on this machine and looked up lazily
 * through {@link ParentLookup} (an `lstat` below the parent). Only what the
 * stream touched is held in memory: its directories and symlinks, and in
 * directories inherited from the parent also its files and removals. Plain
 * files of directories the stream created are never stored, so memory grows
 * with directories + symlinks, not with files.
 */

/** What a name is. `absent`: nothing there (removed, or never created). */
export type EntryKind = 'dir' | 'symlink' | 'other' | 'absent';

/** Says what `path` (relative, `/`-separated, '' = the root) is in the parent snapshot. */
export type ParentLookup = (path: string) => EntryKind;

class Dir {
  readonly children = new Map<string, Node>();
  /** Path of this directory in the parent snapshot, when its contents come from there. */
  constructor(readonly base: string | undefined) {}
}

type Node = Dir | 'symlink' | 'other' | 'absent';

/** Where a path resolves in the model. */
export interface Resolved {
  /** What the last component is. */
  readonly kind: EntryKind;
  /** The leading components that are a symlink or not a directory, when one is. */
  readonly blockedAt?: { readonly path: string; readonly kind: EntryKind };
}

/** The tree of the subvolume a stream creates, as far as the guard needs it. */
export class StreamTree {
  readonly #root: Dir;
  readonly #lookup: ParentLookup;

  /**
   * @param parent for an incremental: what the parent snapshot holds; omit for a
   *   full stream (the tree starts empty).
   */
  constructor(parent?: ParentLookup) {
    this.#lookup = parent ?? (() => 'absent');
    this.#root = new Dir(parent ? '' : undefined);
  }

  /** Resolves a path (components already checked: no `.`, `..` or empty ones). */
  resolve(parts: readonly string[]): Resolved {
    let dir = this.#root;
    for (let i = 0; i < parts.length - 1; i++) {
      const node = this.#child(dir, parts[i]!);
      if (!(node instanceof Dir)) {
        return {
          kind: 'absent',
          blockedAt: { path: parts.slice(0, i + 1).join('/'), kind: kindOf(node) },
        };
      }
      dir = node;
    }
    if (parts.length === 0) return { kind: 'dir' };
    return { kind: kindOf(this.#child(dir, parts.at(-1)!)) };
  }

  /** Records that the stream created `kind` at `parts` (MKFILE, MKDIR, SYMLINK, …). */
  create(parts: readonly string[], kind: 'dir' | 'symlink' | 'other'): void {
    this.#place(parts, kind === 'dir' ? new Dir(undefined) : kind);
  }

  /** Records an UNLINK or RMDIR. */
  remove(parts: readonly string[]): void {
    this.#place(parts, 'absent');
  }

  /** Records a RENAME: whatever is at `from` (with its subtree) moves to `to`. */
  rename(from: readonly string[], to: readonly string[]): void {
    const node = this.#materialize(from);
    this.#place(from, 'absent');
    this.#place(to, node);
  }

  /** Records a LINK: `parts` becomes another name of what is at `target` (a symlink stays one). */
  link(parts: readonly string[], target: readonly string[]): void {
    const kind = this.resolve(target).kind;
    this.#place(parts, kind === 'symlink' ? 'symlink' : 'other');
  }

  #child(dir: Dir, name: string): Node {
    const known = dir.children.get(name);
    if (known !== undefined) return known;
    if (dir.base === undefined) return 'absent';
    const path = dir.base === '' ? name : `${dir.base}/${name}`;
    const kind = this.#lookup(path);
    if (kind === 'dir') {
      const sub = new Dir(path);
      dir.children.set(name, sub);
      return sub;
    }
    if (kind === 'symlink') dir.children.set(name, 'symlink');
    return kind;
  }

  /** The node at `parts` (materialized from the parent if need be), or 'absent'. */
  #materialize(parts: readonly string[]): Node {
    const dir = this.#dirOf(parts);
    return dir ? this.#child(dir, parts.at(-1)!) : 'absent';
  }

  #dirOf(parts: readonly string[]): Dir | undefined {
    if (parts.length === 0) return undefined;
    let dir = this.#root;
    for (const part of parts.slice(0, -1)) {
      const node = this.#child(dir, part);
      if (!(node instanceof Dir)) return undefined;
      dir = node;
    }
    return dir;
  }

  #place(parts: readonly string[], node: Node): void {
    const dir = this.#dirOf(parts);
    if (!dir) return; // the receiver's own syscall fails on such a path
    const name = parts.at(-1)!;
    // In a directory the stream built, plain files and absences need no record.
    if (dir.base === undefined && (node === 'other' || node === 'absent')) {
      dir.children.delete(name);
    } else {
      dir.children.set(name, node);
    }
  }
}

function kindOf(node: Node): EntryKind {
  return node instanceof Dir ? 'dir' : node;
}
