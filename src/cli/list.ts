/** `buttersink <dst>`: lists a store, and with -d deletes its partial transfers. */
import { warn } from '../log.js';
import type { Store } from '../stores/store.js';
import type { CliIo } from './io.js';
import { jsonLine, listingEvent, partialActions } from './json-events.js';
import { diffListing, volumeListing } from './render.js';
import type { InScope } from './render.js';
import { asS3Store } from './s3-only.js';

/** What the listing reads of the flags. */
export interface ListOptions {
  delete: boolean;
  dryRun: boolean;
  quiet: number;
  /** One `listing` event on stdout instead of text. */
  json: boolean;
}

/**
 * Lists `store` on stdout, holding its lock while deleting partials (never
 * those of a run that is writing the store now). Returns the exit code.
 */
export async function runList(
  io: CliIo,
  store: Store,
  opts: ListOptions,
  signal: AbortSignal,
): Promise<number> {
  const lock = opts.delete && !opts.dryRun ? await store.lock?.({ signal }) : undefined;
  try {
    if (opts.json) {
      await listJson(io, store, opts, signal);
      return 0;
    }
    await listSnapshots(io, store, signal);
    await listPartials(io, store, opts, signal);
    return 0;
  } finally {
    await lock?.release();
  }
}

/**
 * Prints the store's snapshots (diffs, for S3). A location naming one snapshot
 * (no trailing `/`) lists what lies at that path: the snapshot, or what is
 * below it as whole path segments (`backups` never matches `backups2/…`). An
 * S3 prefix holding nothing, or a path with nothing at it, gets a warning.
 */
async function listSnapshots(io: CliIo, store: Store, signal: AbortSignal): Promise<void> {
  const { view, inScope } = await viewInScope(store, signal);
  const listing = view.kind === 's3' ? diffListing(view, inScope) : volumeListing(view, inScope);
  io.stdout.write(listing.text);
  warnNothingAtPath(store, view.volumes.length, listing.count);
}

/** The store's view and what of it the location names, warning about an empty S3 prefix. */
async function viewInScope(store: Store, signal: AbortSignal) {
  const view = await store.view('dest', { signal });
  const only = store.location.snapshot;
  const inScope: InScope = (path) =>
    only === undefined || path === only || (path ?? '').startsWith(`${only}/`);
  const s3 = view.volumes.length === 0 ? await asS3Store(store) : undefined;
  if (s3) warn('S3_EMPTY_PREFIX', await s3.describeEmpty({ signal }));
  return { view, inScope };
}

/** Warns when a location naming one snapshot shows nothing although the store holds some. */
function warnNothingAtPath(store: Store, held: number, shown: number): void {
  const only = store.location.snapshot;
  if (shown === 0 && only !== undefined && held > 0) {
    warn(
      'NOTHING_AT_PATH',
      `${store.location.uri}: nothing at this path (no snapshot ${only}, nor any below it)`,
    );
  }
}

/** The listing as one `listing` event (warnings on stderr as in text); -d deletes partials after. */
async function listJson(
  io: CliIo,
  store: Store,
  opts: ListOptions,
  signal: AbortSignal,
): Promise<void> {
  const { view, inScope } = await viewInScope(store, signal);
  const partials = await store.listPartials({ signal });
  const event = listingEvent(store.location.uri, view, inScope, partialActions(partials, opts));
  io.stdout.write(jsonLine(event));
  const shown = event.kind === 's3' ? event.diffs.length : event.snapshots.length;
  warnNothingAtPath(store, view.volumes.length, shown);
  if (opts.delete && !opts.dryRun && partials.length > 0) {
    await store.deletePartials(partials, { signal });
  }
}

/** Prints the partial transfers left in the store; with -d (and no -n) deletes them. */
async function listPartials(
  io: CliIo,
  store: Store,
  opts: ListOptions,
  signal: AbortSignal,
): Promise<void> {
  const partials = await store.listPartials({ signal });
  const deleting = opts.delete && !opts.dryRun;
  for (const p of partials) {
    const what = opts.delete ? (deleting ? ' (deleting)' : ' (would delete)') : '';
    io.stdout.write(`partial: ${p.where}${what}\n`);
  }
  if (partials.length > 0 && !opts.delete && opts.quiet < 2) {
    io.stderr.write(
      `buttersink: ${partials.length} partial transfer(s) found; run with -d to delete them\n`,
    );
  }
  if (deleting && partials.length > 0) await store.deletePartials(partials, { signal });
}
