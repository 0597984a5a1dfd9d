// One side of the "size probe in-process" scenario, in its own process so each
// side has its own peak RSS and CPU: `probe` runs the --no-data size probe the
// sync engine runs, `count` the original's measurement (a whole counting send).
// Prints {"seconds": …} for the pipeline alone (Node start-up excluded).
import { btrfsSend, countBytes, noDataSizeProbe, runPipeline } from '../dist/index.js';

const [side, path, parent] = process.argv.slice(2);
if ((side !== 'probe' && side !== 'count') || !path || !parent) {
  throw new Error('usage: probe-child.mjs probe|count SNAPSHOT PARENT');
}
const t0 = process.hrtime.bigint();
await runPipeline(
  side === 'probe'
    ? [btrfsSend({ path, parent, noData: true }), noDataSizeProbe()]
    : [btrfsSend({ path, parent }), countBytes()],
);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(`${JSON.stringify({ seconds })}\n`);
