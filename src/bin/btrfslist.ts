#!/usr/bin/env node
import { exitOnClosedStdout, btrfslistMain } from '../cli.js';

exitOnClosedStdout();
process.exitCode = await btrfslistMain(process.argv.slice(2));
