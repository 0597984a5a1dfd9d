/**
 * buttersink as a library: the same stages, pipeline runner, stores and
 * planner the CLI uses. Compose your own pipelines from them:
 *
 * ```ts
 * import { btrfsSend, uuidRewrite, streamVerify, hashTap, btrfsReceive, runPipeline } from 'buttersink';
 * await runPipeline([btrfsSend({ path }), uuidRewrite({ target: { uuid } }), streamVerify(),
 *   hashTap({ algorithm: 'sha256' }), btrfsReceive({ dir })]);
 * ```
 */
export * from './errors.js';
export type { Logger, Warning } from './log.js';
export { consoleLogger, setLogger, warn } from './log.js';

// The stream-stage framework.
export * from './streams/index.js';

// Concrete stages.
export type { BtrfsSendOptions, BtrfsSendResult, BtrfsSendStage } from './stages/btrfs-send.js';
export { btrfsSend } from './stages/btrfs-send.js';
export type {
  BtrfsReceiveOptions,
  BtrfsReceiveStage,
  ReceivedSubvolume,
} from './stages/btrfs-receive.js';
export { btrfsReceive } from './stages/btrfs-receive.js';
export type {
  RewrittenSubvolume,
  SubvolumeIdentity,
  UuidRewriteOptions,
  UuidRewriteResult,
} from './stages/uuid-rewrite.js';
export { uuidRewrite } from './stages/uuid-rewrite.js';
export type {
  StreamVerifyOptions,
  VerifyResult as StreamVerifyResult,
} from './stages/stream-verify.js';
export { streamVerify } from './stages/stream-verify.js';
export type { NoDataSizeProbeOptions, SizeEstimate } from './stages/size-probe.js';
export { countBytes, noDataSizeProbe } from './stages/size-probe.js';
export type { ReceiveGuardOptions, ReceiveGuardResult } from './stages/receive-guard.js';
export { receiveGuard } from './stages/receive-guard.js';
export type { CloneToWriteOptions, CloneToWriteResult } from './stages/clone-to-write.js';
export { cloneToWrite } from './stages/clone-to-write.js';
export type {
  DigestCheckOptions,
  DigestCheckResult,
  StreamDigest,
  StreamDigestStage,
} from './stages/digest-check.js';
export { digestCheck, streamDigest } from './stages/digest-check.js';
export type { TreeWalkOptions, TreeWalkResult } from './checksumdir/tree-walk.js';
export { treeWalk } from './checksumdir/tree-walk.js';
export type { FileHashOptions, FileHashResult } from './checksumdir/file-hash.js';
export { fileHash } from './checksumdir/file-hash.js';

// btrfs-progs wrapper and send-stream codec.
export { listSubvolumes } from './btrfs/subvolume-list.js';
export type { SubvolumeInfo } from './btrfs/subvolume-list.js';
export { subvolumeShow } from './btrfs/subvolume-show.js';
export { deleteSubvolume, setReadOnly, snapshot } from './btrfs/subvolume.js';
export { qgroupSizes } from './btrfs/qgroup.js';
export type { StreamSupport } from './btrfs/send-capabilities.js';
export { localStreamSupport } from './btrfs/send-capabilities.js';
export type { CompressedDataDecision } from './stores/compressed-data.js';
export { decideCompressedData } from './stores/compressed-data.js';
export type { StreamVersionGateOptions } from './stages/stream-version-gate.js';
export { StreamVersionError, streamVersionGate } from './stages/stream-version-gate.js';
export { SendStreamParser } from './btrfs/send-stream/parser.js';
export type {
  ParseTotals,
  RewrittenCommand,
  SendStreamPass,
} from './btrfs/send-stream/stream-pass.js';
export { passStage } from './btrfs/send-stream/stream-pass.js';

// Planner.
export * from './planner/index.js';

// Stores and sync.
export type {
  Partial,
  ReceiveStages,
  SendOptions,
  Store,
  StoreOpOptions,
  StoreRole,
} from './stores/store.js';
export type { BtrfsLocation, Location, S3Location, SshLocation } from './stores/uri.js';
export { formatLocation, parseLocation } from './stores/uri.js';
export { BtrfsStore } from './stores/btrfs/btrfs-store.js';
export type { OpenStoreOptions } from './stores/open-store.js';
export { openStore } from './stores/open-store.js';
export type { RetryOptions } from './stores/wrappers/retry-store.js';
export { RetryStore } from './stores/wrappers/retry-store.js';
export { DryRunStore } from './stores/wrappers/dry-run-store.js';
export { unwrapStore } from './stores/wrappers/unwrap.js';
export type { SyncOptions, SyncReport, TransferDone } from './sync.js';
export { sync, transfer } from './sync.js';
export type { RetentionResult, RetentionRunOptions } from './retention/run.js';
export { retentionExcludes, runRetention } from './retention/run.js';
export type { RetentionPlan, RetentionSettings } from './retention/decide.js';

// Companion commands as library calls.
export { btrfsList, formatBtrfsList } from './btrfslist.js';
export type { BtrfsListing, ListedSubvolume } from './btrfslist.js';
export { runChecksumdir, verifyChecksumdir } from './checksumdir/index.js';
export type { ChecksumdirOptions, ChecksumdirResult } from './checksumdir/index.js';
