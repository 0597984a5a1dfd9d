/** What every CLI command shares: where it writes, and the package version. */
import { readFileSync } from 'node:fs';

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The process's own stdout and stderr. */
export const defaultIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

/** The version in package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * Ends the process quietly when the reader of stdout goes away
 * (`buttersink --help | head`), as command-line tools do, instead of crashing on EPIPE.
 */
export function exitOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
