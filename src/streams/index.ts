/**
 * The stream-stage framework's public surface: stage types and constructors, the
 * pipeline runner, taps, the chunker and the highland adapter. Knows nothing of btrfs or S3.
 */
export type {
  SinkStage,
  SourceStage,
  Stage,
  StageBase,
  StageOptions,
  TransformStage,
} from './stage.js';
export {
  destroyOnAbort,
  handled,
  sinkStage,
  sourceStage,
  streamDone,
  transformStage,
} from './stage.js';
export type { TapStageOptions } from './make-stage.js';
export { resultTransformStage, tapStage } from './make-stage.js';
export type { PipelineOptions, PipelineResult, PipelineStages, StageResults } from './pipeline.js';
export { runPipeline } from './pipeline.js';
export type { MergeFunction, MergeableStage } from './mergeable.js';
export { canMerge, mergeAdjacent } from './mergeable.js';
export type { CommitSinkOptions } from './commit-sink.js';
export { commitSink } from './commit-sink.js';
export type { ByteCounterOptions, ByteCounterStage } from './byte-counter.js';
export { byteCounter, isByteCounter } from './byte-counter.js';
export type { Progress, ProgressTapOptions } from './progress-tap.js';
export { progressReport, progressTap } from './progress-tap.js';
export type { HashAlgorithm, HashTapOptions } from './hash-tap.js';
export { hashTap } from './hash-tap.js';
export type {
  ChunkerOptions,
  ChunkerResult,
  ChunkerStream,
  GrowingPartSizeOptions,
  Part,
} from './chunker.js';
export { chunker, growingPartSize } from './chunker.js';
export type { LimitOptions, LimitTask } from './highland-adapter.js';
export { forEachLimit, mapLimit } from './highland-adapter.js';
export type { JoinOptions, JoinResult, JoinedProcess } from './os-pipe.js';
export { joinProcesses, readCount } from './os-pipe.js';
