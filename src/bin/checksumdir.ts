#!/usr/bin/env node
import { exitOnClosedStdout, checksumdirMain } from '../cli.js';

exitOnClosedStdout();
process.exitCode = await checksumdirMain(process.argv.slice(2));
