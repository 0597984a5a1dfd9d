#!/usr/bin/env node
// The command's own module, not ../cli.js: a run loads only the command it runs.
import { checksumdirMain } from '../cli/checksumdir.js';
import { exitOnClosedStdout } from '../cli/io.js';

exitOnClosedStdout();
process.exitCode = await checksumdirMain(process.argv.slice(2));
