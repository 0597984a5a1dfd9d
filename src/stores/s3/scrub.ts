/**
 * Integrity scrub of an S3 store: downloads every stored diff, checks its whole-stream
 * SHA-256 and stream version against the ones recorded in its metadata at upload
 * (digest-check, part of the store's download) and runs it through stream-verify
 * (framing, CRC-32C of every command, END last), changing nothing. A diff without a
 * recorded digest (written by the original buttersink) is checked by its CRCs and
 * noted, not counted as bad.
 * An encrypted or compressed diff (`.age`, `.zst`, `.zst.age`) is decrypted and
 * decompressed first, then its CRCs checked; without an age identity an encrypted diff
 * can only have its stored digest checked, which is noted.
 * Diffs are checked one after another; each download has the store's `jobs`
 * ranges in flight, so memory is that of one download.
 */
import { describeError } from '../../errors.js';
import { streamVerify } from '../../stages/stream-verify.js';
import { countBytes } from '../../stages/size-probe.js';
import { runPipeline } from '../../streams/pipeline.js';
import type { S3Store, StoredDiff } from './s3-store.js';

/** Options of {@link scrubStore}. */
export interface ScrubOptions {
  signal?: AbortSignal;
  /**
   * Called after each diff was checked: `error` set when it is bad; `note` (information,
   * not an error) when it is good but has no whole-stream checksum to check.
   */
  onDiff?: (diff: StoredDiff, outcome: { ok: boolean; error?: string; note?: string }) => void;
}

/** The note on a diff without a whole-stream checksum. */
export const NO_DIGEST_NOTE = 'no whole-stream checksum (written by an older buttersink)';
/** The note on a diff whose upload never recorded its checksum. */
export const PENDING_DIGEST_NOTE =
  'no whole-stream checksum (its upload was interrupted before recording it)';

/** The note on an encrypted diff scrubbed without an identity. */
export const NO_IDENTITY_NOTE =
  'encrypted: only its stored digest was checked (give --age-identity to check every command)';
/** The note on an encrypted diff without a recorded digest, scrubbed without an identity. */
export const UNCHECKED_NOTE =
  'encrypted and no whole-stream checksum: nothing could be checked (give --age-identity)';

/** A good diff checked by its command CRCs only. */
export interface NotedDiff {
  readonly diff: StoredDiff;
  readonly uri: string;
  readonly note: string;
}

/** A diff that failed verification. */
export interface BadDiff {
  readonly diff: StoredDiff;
  /** `s3://bucket/key`. */
  readonly uri: string;
  /** One line: what was wrong (command index, byte offset, or the S3 error). */
  readonly error: string;
}

/** What {@link scrubStore} found. */
export interface ScrubReport {
  /** Diffs checked. */
  readonly checked: number;
  /** Bytes read. */
  readonly bytes: number;
  readonly bad: readonly BadDiff[];
  /** Good diffs that had no whole-stream checksum (information). */
  readonly notes: readonly NotedDiff[];
}

/**
 * Verifies every diff stored in `store`. Resolves with the report (bad diffs do not
 * reject it); rejects only when listing fails or the scrub is aborted. Read-only.
 */
export async function scrubStore(store: S3Store, opts: ScrubOptions = {}): Promise<ScrubReport> {
  const sig = opts.signal ? { signal: opts.signal } : {};
  const diffs = await store.storedDiffs(sig);
  const bad: BadDiff[] = [];
  const notes: NotedDiff[] = [];
  let bytes = 0;
  for (const diff of diffs) {
    opts.signal?.throwIfAborted();
    try {
      const decode = store.canDecode(diff);
      const { results } = await runPipeline(
        decode
          ? ([store.downloadDecoded(diff, sig), streamVerify(sig), countBytes(sig)] as const)
          : ([store.download(diff, sig), countBytes(sig)] as const),
        sig,
      );
      bytes += results[results.length - 1] as number;
      const status = results[0].status;
      const note = !decode
        ? status === 'verified'
          ? NO_IDENTITY_NOTE
          : UNCHECKED_NOTE
        : status === 'none'
          ? NO_DIGEST_NOTE
          : status === 'pending'
            ? PENDING_DIGEST_NOTE
            : undefined;
      if (note !== undefined) notes.push({ diff, uri: store.uriOf(diff.key), note });
      opts.onDiff?.(diff, { ok: true, ...(note !== undefined ? { note } : {}) });
    } catch (err) {
      opts.signal?.throwIfAborted();
      const uri = store.uriOf(diff.key);
      let error = describeError(err);
      // The report names the diff already.
      if (error.startsWith(`${uri}: `)) error = error.slice(uri.length + 2);
      bad.push({ diff, uri, error });
      opts.onDiff?.(diff, { ok: false, error });
    }
  }
  return { checked: diffs.length, bytes, bad, notes };
}
