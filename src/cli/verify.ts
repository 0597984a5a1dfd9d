/** `buttersink --verify s3://…`: scrubs every stored diff, changes nothing. */
import { UsageError } from '../errors.js';
import type { Store } from '../stores/store.js';
import type { CliIo } from './io.js';
import { jsonLine } from './json-events.js';
import type { VerifyEvent } from './json-events.js';
import { verifySummary } from './render.js';
import { asS3Store } from './s3-only.js';

/**
 * Verifies each diff of an S3 store, one line each (`ok` lines only when not
 * quiet), then a summary; with `json`, one `verify` event instead. Returns 1
 * when a diff is bad, else 0; throws UsageError for a store that is not S3.
 */
export async function runVerify(
  io: CliIo,
  given: Store,
  opts: { quiet: number; json: boolean },
  signal: AbortSignal,
): Promise<number> {
  const store = await asS3Store(given);
  if (!store) throw new UsageError('--verify checks stored diffs: give an s3:// location');
  const { scrubStore } = await import('../stores/s3/scrub.js');
  const { quiet, json } = opts;
  const diffs: VerifyEvent['diffs'] = [];
  const report = await scrubStore(store, {
    signal,
    onDiff: (d, r) => {
      const uri = store.uriOf(d.key);
      diffs.push({ uri, ok: r.ok, error: r.error ?? null, note: r.note ?? null });
      if (json) return;
      if (r.ok && quiet === 0) {
        io.stdout.write(`ok   ${store.uriOf(d.key)}${r.note ? ` (info: ${r.note})` : ''}\n`);
      }
      if (!r.ok) io.stdout.write(`BAD  ${store.uriOf(d.key)}: ${r.error}\n`);
    },
  });
  const bad = report.bad.length;
  io.stdout.write(
    json
      ? jsonLine({
          event: 'verify',
          location: store.location.uri,
          diffs,
          checked: report.checked,
          bytes: report.bytes,
          bad,
        })
      : verifySummary(report.checked, report.bytes, bad),
  );
  return report.bad.length > 0 ? 1 : 0;
}
