/**
 * Integrity scrub of an S3 store: downloads every stored diff and runs it through
 * stream-verify (framing, CRC-32C of every command, END last), changing nothing.
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
  /** Called after each diff was checked (`error` set when it is bad). */
  onDiff?: (diff: StoredDiff, outcome: { ok: boolean; error?: string }) => void;
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
}

/**
 * Verifies every diff stored in `store`. Resolves with the report (bad diffs do not
 * reject it); rejects only when listing fails or the scrub is aborted. Read-only.
 */
export async function scrubStore(store: S3Store, opts: ScrubOptions = {}): Promise<ScrubReport> {
  const sig = opts.signal ? { signal: opts.signal } : {};
  const diffs = await store.storedDiffs(sig);
  const bad: BadDiff[] = [];
  let bytes = 0;
  for (const diff of diffs) {
    opts.signal?.throwIfAborted();
    try {
      const { results } = await runPipeline(
        [store.download(diff, sig), streamVerify(sig), countBytes(sig)] as const,
        sig,
      );
      bytes += results[2];
      opts.onDiff?.(diff, { ok: true });
    } catch (err) {
      opts.signal?.throwIfAborted();
      const error = describeError(err);
      bad.push({ diff, uri: store.uriOf(diff.key), error });
      opts.onDiff?.(diff, { ok: false, error });
    }
  }
  return { checked: diffs.length, bytes, bad };
}
