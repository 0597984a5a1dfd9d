/** `btrfslist`: shows the subvolumes of a btrfs filesystem. */
import { isRoot } from '../btrfs/exec.js';
import { btrfsList, formatBtrfsList } from '../btrfslist.js';
import { NotRootError } from '../errors.js';
import { defaultIo } from './io.js';
import { jsonLine } from './json-events.js';
import type { CliIo } from './io.js';
import { reportError } from './report-error.js';
import { parseOrExit, simpleProgram } from './simple-program.js';

/** `btrfslist [--json] <dir>`: returns the exit code. */
export async function btrfslistMain(
  argv: readonly string[],
  io: CliIo = defaultIo,
): Promise<number> {
  const program = simpleProgram(
    'btrfslist',
    'Show the subvolumes of a btrfs filesystem with UUIDs, generations and sizes.',
    io,
  )
    .argument('<dir>', 'a directory on the btrfs filesystem')
    .option(
      '--json',
      'print one JSON line for scripts (schema/buttersink-json.schema.json, event btrfslist)',
      false,
    );
  const early = parseOrExit(program, argv);
  if (early !== undefined) return early;
  const dir = program.processedArgs[0] as string;
  try {
    if (!isRoot()) throw new NotRootError('must be root to access a btrfs filesystem');
    const listing = await btrfsList(dir);
    io.stdout.write(
      program.opts<{ json: boolean }>().json
        ? jsonLine({ event: 'btrfslist', ...listing })
        : formatBtrfsList(listing),
    );
    return 0;
  } catch (err) {
    return reportError(io, 'btrfslist', err);
  }
}
