// stdin → uuid-rewrite → stream-verify → progress → stdout, with the built
// library: the stage chain of a btrfs → btrfs transfer, run between a plain
// `btrfs send` and `btrfs receive` (bench scenario "stages in a pipe").
import {
  progressTap,
  runPipeline,
  sinkStage,
  sourceStage,
  streamVerify,
  uuidRewrite,
} from '../dist/index.js';

let last = 0;
await runPipeline([
  sourceStage('stdin', process.stdin),
  uuidRewrite({}),
  streamVerify(),
  progressTap({ onProgress: (p) => (last = p.bytes) }),
  sinkStage('stdout', process.stdout),
]);
process.stderr.write(`filter: ${last} bytes\n`);
