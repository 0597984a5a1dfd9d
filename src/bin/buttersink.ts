#!/usr/bin/env node
import { buttersinkMain } from '../cli.js';

process.exitCode = await buttersinkMain(process.argv.slice(2));
