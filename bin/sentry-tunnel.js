#!/usr/bin/env node
// Thin shim over the bundled CLI (npm install builds dist/ in `prepare`: scripts/bundle.js).
import { main } from '../dist/bundle/cli.js';

process.exitCode = await main(process.argv);
