#!/usr/bin/env node
// Thin shim over the compiled CLI (npm install builds dist/ in `prepare`).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv);
