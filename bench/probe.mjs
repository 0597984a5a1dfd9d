// Prints the fast size probe's estimate of `btrfs send [-p PARENT] SNAPSHOT`
// (a `--no-data` send summed by the size-probe stage), with the built library.
import { btrfsSend, noDataSizeProbe, runPipeline } from '../dist/index.js';

const [path, parent] = process.argv.slice(2);
const { results } = await runPipeline([
  btrfsSend({ path, ...(parent ? { parent } : {}), noData: true }),
  noDataSizeProbe(),
]);
process.stdout.write(`${results[1].bytes}\n`);
