#!/usr/bin/env node
import { exitOnClosedStdout, buttersinkMain } from '../cli.js';

exitOnClosedStdout();
process.exitCode = await buttersinkMain(process.argv.slice(2));
