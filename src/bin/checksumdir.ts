#!/usr/bin/env node
import { checksumdirMain } from '../cli.js';

process.exitCode = await checksumdirMain(process.argv.slice(2));
