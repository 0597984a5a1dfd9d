// stdin → uuid-rewrite → stream-verify → progress → stdout, with the built
// library: the stage chain of a btrfs → btrfs transfer, run between a plain
// `btrfs send` and `btrfs receive` (bench scenario "stages in a pipe"). With a
// NAME argument, uuid-rewrite renames the stream's subvolume to NAME, as the
// btrfs store receives under `<path>.part` before its commit renames it.
import {
  progressTap,
  runPipeline,
  sinkStage,
  sourceStage,
  streamVerify,
  uuidRewrite,
} from '../dist/index.js';

const [subvolumeName] = process.argv.slice(2);
let last = 0;
await runPipeline([
  sourceStage('stdin', process.stdin),
  uuidRewrite(subvolumeName ? { subvolumeName } : {}),
  streamVerify(),
  progressTap({ onProgress: (p) => (last = p.bytes) }),
  sinkStage('stdout', process.stdout),
]);
process.stderr.write(`filter: ${last} bytes\n`);
