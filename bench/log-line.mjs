// The cost of one request line (log.requests "all"): pino's logger.info(record, 'request') against
// recordWriter's line for the same logger options, in alternating rounds in one process, CPU per line.
// Both write to one file through the same batched destination the daemon uses for stdout.
// Runs the built code: npm run build first.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createLogger, recordWriter } from '../dist/observability/logger.js';

const LINES = Number(process.env.BENCH_LINES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const file = join(mkdtempSync(join(tmpdir(), 'sentry-tunnel-log-line-')), 'lines.log');
const options = { level: 'info', format: 'json', requests: 'all', summaryIntervalMs: 60_000 };
const destination = () => pino.destination({ dest: file, sync: true, minLength: 4096 });

// A forwarded request's record, as Pipeline.run builds it.
let n = 0;
const record = () => ({ reqId: `a1b2c3-${(++n).toString(36)}`, method: 'POST', path: '/tunnel', route: '/tunnel', status: 200, bytesIn: 2224, durationMs: 1.23, project: 'web', outcome: 'forwarded', upstreamStatus: 200 });

const viaPino = createLogger(options, destination());
const direct = recordWriter(createLogger(options, destination()), 'request');
const variants = { 'pino info()': (r) => viaPino.info(r, 'request'), recordWriter: (r) => direct('info', r) };

const perLine = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
for (let round = 0; round <= ROUNDS; round++) {
  for (const [name, write] of Object.entries(variants)) {
    const started = process.cpuUsage();
    for (let i = 0; i < LINES; i++) write(record());
    const used = process.cpuUsage(started);
    if (round > 0) perLine[name].push((used.user + used.system) / LINES); // round 0 warms up
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [name, values] of Object.entries(perLine)) console.log(`${name.padEnd(14)} ${median(values).toFixed(2)} µs per line (median of ${ROUNDS} rounds of ${LINES})`);
