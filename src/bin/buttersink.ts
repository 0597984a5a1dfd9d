#!/usr/bin/env node
// The command's own module, not ../cli.js: a run loads only the command it runs.
import { buttersinkMain } from '../cli/buttersink.js';
import { exitOnClosedStdout } from '../cli/io.js';

exitOnClosedStdout();
process.exitCode = await buttersinkMain(process.argv.slice(2));
