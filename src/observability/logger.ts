// The pino logger: JSON lines for machines, pino-pretty on a terminal. Callers log only chosen fields
// (never bodies or DSN keys); the redact list is a second line of defence.
import { createRequire } from 'node:module';
import { type Logger, pino } from 'pino';
import type { Config } from '../config/schema.js';

export type { Logger };

/** The longest a log line waits in the stdout buffer. */
const FLUSH_INTERVAL_MS = 200;

const REDACT = ['dsn', '*.dsn', 'headers.authorization', 'headers.cookie', 'body'];
const require = createRequire(import.meta.url);

type Destination = NodeJS.WritableStream & { isTTY?: boolean };

export function createLogger(options: Config['log'], destination: Destination = process.stdout): Logger {
  const base = { level: options.level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } };
  const pretty = options.format === 'pretty' || (options.format === 'auto' && destination.isTTY === true);
  if (pretty) return pino(base, prettyStream(destination));
  return pino(base, destination === process.stdout ? stdoutDestination() : destination);
}

/**
 * Writes to stdout, batched: lines are written once 4 KiB have gathered (about a dozen request lines),
 * and at the latest FLUSH_INTERVAL_MS after they were logged. One write per request line cost more
 * CPU than anything else the tunnel adds to a request.
 *
 * The batches are written synchronously (pino's default), not through libuv's thread pool: handing
 * each write to a pool thread cost ~10 % of the tunnel's CPU per request on a 2-core machine
 * (npm run bench:ab, paired rounds), a `write()` of 4 KiB much less. The price is pino's usual
 * one: while stdout cannot take more (a reader that stops reading), the tunnel waits for it instead
 * of buffering lines in memory without bound. pino flushes at exit; serve flushes after the
 * "listening" line and at shutdown.
 */
function stdoutDestination() {
  return pino.destination({ fd: 1, sync: true, minLength: 4096, periodicFlush: FLUSH_INTERVAL_MS });
}

function prettyStream(destination: Destination): NodeJS.WritableStream {
  // Loaded on demand: pino-pretty costs start-up time that JSON output does not need.
  const pretty = require('pino-pretty') as (options: object) => NodeJS.WritableStream;
  return pretty({
    destination,
    sync: true,
    colorize: destination.isTTY === true,
    ignore: 'pid,hostname',
    translateTime: 'SYS:HH:MM:ss.l',
  });
}
