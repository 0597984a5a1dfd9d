/** `checksumdir`: records or verifies the checksums of directories. */
import type { Writable } from 'node:stream';
import { describeDifferences, runChecksumdir, verifyChecksumdir } from '../checksumdir/index.js';
import { formatBytes } from '../format.js';
import { withAbort } from './abort.js';
import { defaultIo } from './io.js';
import type { CliIo } from './io.js';
import { reportError } from './report-error.js';
import { parseOrExit, simpleProgram } from './simple-program.js';

/** `checksumdir [--verify] <dir>...`: returns the exit code. */
export async function checksumdirMain(
  argv: readonly string[],
  io: CliIo = defaultIo,
): Promise<number> {
  const program = simpleProgram(
    'checksumdir',
    'Checksum all data and key metadata of directories (NAME.ls, NAME.files, NAME.sha256sum in the current directory).',
    io,
  )
    .argument('<dir...>', 'directories to record')
    .option(
      '--verify',
      'compare each <dir> with the NAME.ls/NAME.files recorded earlier (in --records or .)',
      false,
    )
    .option('--records <dir>', 'where the record files are (default: current directory)')
    .option('-q, --quiet', 'no progress line', false);
  const early = parseOrExit(program, argv);
  if (early !== undefined) return early;
  const o = program.opts<{ verify: boolean; records?: string; quiet: boolean }>();
  const dirs = program.processedArgs[0] as string[];
  const progress = o.quiet ? {} : { progress: io.stderr as unknown as Writable };
  return withAbort(
    io,
    async (signal) => {
      if (!o.verify) {
        const r = await runChecksumdir({
          dirs,
          signal,
          ...progress,
          ...(o.records ? { outDir: o.records } : {}),
        });
        for (const d of r.dirs) {
          io.stdout.write(
            `${d.name}: ${d.counts.entries} entries, ${d.counts.files} files, ${formatBytes(d.counts.bytes)}\n`,
          );
        }
        return r.exitCode;
      }
      let code = 0;
      for (const dir of dirs) {
        const r = await verifyChecksumdir({
          dir,
          signal,
          ...progress,
          ...(o.records ? { recordDir: o.records } : {}),
        });
        for (const line of describeDifferences(r.differences)) io.stdout.write(`${line}\n`);
        if (r.recordsIntact === false)
          io.stdout.write(`records of ${dir} do not match their .sha256sum\n`);
        io.stdout.write(`${dir}: ${r.identical ? 'identical' : 'DIFFERS'}\n`);
        if (r.exitCode !== 0) code = 1;
      }
      return code;
    },
    (err) => reportError(io, 'checksumdir', err),
  );
}
