/** `buttersink --verify s3://…`: scrubs every stored diff, changes nothing. */
import { UsageError } from '../errors.js';
import { S3Store } from '../stores/s3/s3-store.js';
import { scrubStore } from '../stores/s3/scrub.js';
import type { Store } from '../stores/store.js';
import type { CliIo } from './io.js';
import { verifySummary } from './render.js';

/**
 * Verifies each diff of an S3 store, one line each (`ok` lines only when not
 * quiet), then a summary. Returns 1 when a diff is bad, else 0; throws
 * UsageError for a store that is not S3.
 */
export async function runVerify(
  io: CliIo,
  store: Store,
  quiet: number,
  signal: AbortSignal,
): Promise<number> {
  if (!(store instanceof S3Store)) {
    throw new UsageError('--verify checks stored diffs: give an s3:// location');
  }
  const report = await scrubStore(store, {
    signal,
    onDiff: (d, r) => {
      if (r.ok && quiet === 0) {
        io.stdout.write(`ok   ${store.uriOf(d.key)}${r.note ? ` (info: ${r.note})` : ''}\n`);
      }
      if (!r.ok) io.stdout.write(`BAD  ${store.uriOf(d.key)}: ${r.error}\n`);
    },
  });
  io.stdout.write(verifySummary(report.checked, report.bytes, report.bad.length));
  return report.bad.length > 0 ? 1 : 0;
}
