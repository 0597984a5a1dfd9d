#!/usr/bin/env node
// The command's own module, not ../cli.js: a run loads only the command it runs.
import { btrfslistMain } from '../cli/btrfslist.js';
import { exitOnClosedStdout } from '../cli/io.js';

exitOnClosedStdout();
process.exitCode = await btrfslistMain(process.argv.slice(2));
