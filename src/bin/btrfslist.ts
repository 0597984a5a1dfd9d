#!/usr/bin/env node
import { btrfslistMain } from '../cli.js';

process.exitCode = await btrfslistMain(process.argv.slice(2));
