/**
 * Writes one directory's `NAME.ls`, `NAME.files` and `NAME.sha256sum`. Each
 * file is written under a temporary name and renamed into place, the
 * `.sha256sum` last, so a visible `NAME.sha256sum` always matches the two
 * listings beside it.
 */
import { createHash } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Listing } from './listing.js';
import { formatSha256sumLine } from './sha256sum-line.js';

/** Paths of the three files written. */
export interface ChecksumdirOutputs {
  ls: string;
  files: string;
  sha256sum: string;
}

/** `sha256sum NAME.ls NAME.files` output for the two listings. */
export function sha256sumOfListing(name: string, listing: Listing): Buffer {
  const line = (suffix: string, content: Buffer) =>
    formatSha256sumLine(
      createHash('sha256').update(content).digest('hex'),
      Buffer.from(`${name}${suffix}`),
    );
  return Buffer.concat([line('.ls', listing.ls), line('.files', listing.files)]);
}

/**
 * Writes the listings of `name` into `outDir`, replacing earlier ones. On
 * failure no temporary file is left behind; files already renamed stay.
 */
export async function writeChecksumdirOutputs(
  outDir: string,
  name: string,
  listing: Listing,
): Promise<ChecksumdirOutputs> {
  const outputs: ChecksumdirOutputs = {
    ls: join(outDir, `${name}.ls`),
    files: join(outDir, `${name}.files`),
    sha256sum: join(outDir, `${name}.sha256sum`),
  };
  const contents: [string, Buffer][] = [
    [outputs.ls, listing.ls],
    [outputs.files, listing.files],
    [outputs.sha256sum, sha256sumOfListing(name, listing)],
  ];
  const temp = (path: string) => `${path}.tmp-${process.pid}`;
  try {
    for (const [path, data] of contents) await writeFile(temp(path), data);
    for (const [path] of contents) await rename(temp(path), path);
  } finally {
    await Promise.all(contents.map(([path]) => rm(temp(path), { force: true })));
  }
  return outputs;
}
