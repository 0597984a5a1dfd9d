/**
 * The command-line front end: `buttersink`, `checksumdir`, `btrfslist`. Each
 * parses its flags (commander lives only in src/cli/), turns them into the
 * library's option objects once, runs the library, and reports. Exit codes: 0
 * success, 1 failure, 2 usage error, 130/143 when stopped by SIGINT/SIGTERM.
 */
export type { CliIo } from './io.js';
export { exitOnClosedStdout } from './io.js';
export { buttersinkMain } from './buttersink.js';
export { checksumdirMain } from './checksumdir.js';
export { btrfslistMain } from './btrfslist.js';
