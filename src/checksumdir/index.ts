/**
 * checksumdir: record and verify a directory's data and key metadata in the
 * original script's `NAME.ls` / `NAME.files` / `NAME.sha256sum` format.
 */
export { runChecksumdir } from './run-checksumdir.js';
export type {
  ChecksumdirOptions,
  ChecksumdirResult,
  ChecksumdirDirResult,
} from './run-checksumdir.js';
export { verifyChecksumdir } from './verify-checksumdir.js';
export type { VerifyChecksumdirOptions, VerifyResult } from './verify-checksumdir.js';
export { compareListings, describeDifferences, noDifferences } from './compare-listings.js';
export type { ListingDifferences } from './compare-listings.js';
export { scanTree } from './scan-tree.js';
export type { ScanTreeOptions, ScanResult, ScanCounts } from './scan-tree.js';
export { ListingBuilder } from './listing.js';
export type { Listing, ListingEntry } from './listing.js';
export { listingSink } from './listing-sink.js';
export type { ListingSinkOptions, HashedWalkEntry } from './listing-sink.js';
export { formatLsLine, symbolicMode, findTime } from './ls-line.js';
export type { LsFacts } from './ls-line.js';
export { formatSha256sumLine, parseSha256sumLine, escapeName } from './sha256sum-line.js';
export { sortLikeGnuSort, keyStart, splitLines, joinLines } from './gnu-sort.js';
export { writeChecksumdirOutputs, sha256sumOfListing } from './write-outputs.js';
export type { ChecksumdirOutputs } from './write-outputs.js';
