/**
 * The bucket layout of the original buttersink (formats.md), in one place:
 *
 * - a diff: `<prefix>/<snapshot path>/<toUUID>_<fromUUID>` (`None` for a full send)
 * - an archived diff (this version, `--compress`/`--encrypt-to`): the same key with a
 *   suffix, `.zst` (zstd), `.age` (age) or `.zst.age` (compressed, then encrypted);
 *   the original ignores these keys (its pattern allows no `.` after the UUIDs)
 * - size info: `<prefix>/<snapshot path>.bs`
 * - a deleted diff: `trash/<original key>`
 * - the lock of a running buttersink (this version): `<prefix>/.buttersink-lock`
 *   (the original skips it as a key it does not know: no `_`, no `.bs`)
 *
 * Pure functions, no I/O.
 */
import { isUuid } from '../../btrfs/send-stream/values.js';

/** Top-level key prefix deleted diffs are moved under. */
export const TRASH_PREFIX = 'trash/';

/** Name of the lock object under a store prefix (see `s3-lock.ts`). */
export const LOCK_NAME = '.buttersink-lock';

/** What a key under a store prefix is. */
export type ParsedKey =
  | {
      readonly kind: 'diff';
      /** Snapshot path relative to the store prefix. */
      readonly path: string;
      readonly to: string;
      readonly from: string | null;
      /** How the stored bytes are encoded: `''` a plain send stream. */
      readonly suffix: DiffSuffix;
    }
  | { readonly kind: 'info'; /** Snapshot path the `.bs` file describes. */ readonly path: string }
  | { readonly kind: 'trash' }
  | { readonly kind: 'lock' }
  | { readonly kind: 'directory' }
  | { readonly kind: 'unknown' };

/** Key suffixes of diffs: plain, zstd-compressed, age-encrypted, compressed then encrypted. */
export const DIFF_SUFFIXES = ['', '.zst', '.age', '.zst.age'] as const;

/** One of {@link DIFF_SUFFIXES}. */
export type DiffSuffix = (typeof DIFF_SUFFIXES)[number];

const DIFF_NAME = /^([-a-zA-Z0-9]+)_([-a-zA-Z0-9]+)((?:\.zst)?(?:\.age)?)$/;

/** `prefix` + `/`, or nothing for the bucket root. */
export function prefixDir(prefix: string): string {
  return prefix === '' ? '' : `${prefix}/`;
}

/**
 * The key of the diff creating `to` (at `path`) from `from` (null: full), stored with
 * encoding `suffix` (default plain). UUIDs lower-case.
 */
export function diffKey(
  prefix: string,
  path: string,
  to: string,
  from: string | null,
  suffix: DiffSuffix = '',
): string {
  return `${prefixDir(prefix)}${path}/${to.toLowerCase()}_${from === null ? 'None' : from.toLowerCase()}${suffix}`;
}

/** The key of the `.bs` size-info object of snapshot `path`. */
export function sizeInfoKey(prefix: string, path: string): string {
  return `${prefixDir(prefix)}${path}.bs`;
}

/** The key of the store's lock object. */
export function lockKey(prefix: string): string {
  return `${prefixDir(prefix)}${LOCK_NAME}`;
}

/** Where `--delete` moves `key`. */
export function trashKey(key: string): string {
  return `${TRASH_PREFIX}${key}`;
}

/**
 * Classifies `key`, which must start with {@link prefixDir}(prefix). A diff needs a
 * non-empty snapshot path and UUIDs (`None` allowed for `from`), then one of
 * {@link DIFF_SUFFIXES}; anything under
 * `trash/` (at the bucket root or under the prefix) is `trash`; keys ending in `/` are
 * `directory` placeholders; the store's {@link lockKey} is `lock`; everything else is `unknown`.
 */
export function parseKey(prefix: string, key: string): ParsedKey {
  const dir = prefixDir(prefix);
  if (!key.startsWith(dir)) return { kind: 'unknown' };
  const rel = key.slice(dir.length);
  if (key.startsWith(TRASH_PREFIX) || rel.startsWith(TRASH_PREFIX)) return { kind: 'trash' };
  if (rel === '' || rel.endsWith('/')) return { kind: 'directory' };
  if (rel === LOCK_NAME) return { kind: 'lock' };
  if (rel.endsWith('.bs')) {
    const path = rel.slice(0, -'.bs'.length);
    return path === '' ? { kind: 'unknown' } : { kind: 'info', path };
  }
  const cut = rel.lastIndexOf('/');
  if (cut <= 0) return { kind: 'unknown' };
  const m = DIFF_NAME.exec(rel.slice(cut + 1));
  const to = m?.[1];
  const from = m?.[2];
  const suffix = (m?.[3] ?? '') as DiffSuffix;
  if (to === undefined || from === undefined || !isUuid(to)) return { kind: 'unknown' };
  if (from !== 'None' && !isUuid(from)) return { kind: 'unknown' };
  return {
    kind: 'diff',
    path: rel.slice(0, cut),
    to: to.toLowerCase(),
    from: from === 'None' ? null : from.toLowerCase(),
    suffix,
  };
}
