// The pino logger: JSON lines for machines, pino-pretty on a terminal. Callers log only chosen fields
// (never bodies or DSN keys); the redact list is a second line of defence.
import { createRequire } from 'node:module';
import { type Logger, pino } from 'pino';
import type { Config } from './config.js';

export type { Logger };

const REDACT = ['dsn', '*.dsn', 'headers.authorization', 'headers.cookie', 'body'];
const require = createRequire(import.meta.url);

type Destination = NodeJS.WritableStream & { isTTY?: boolean };

export function createLogger(options: Config['log'], destination: Destination = process.stdout): Logger {
  const base = { level: options.level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } };
  const pretty = options.format === 'pretty' || (options.format === 'auto' && destination.isTTY === true);
  if (pretty) return pino(base, prettyStream(destination));
  // Asynchronous writes to stdout keep logging off the request path; serve flushes before it exits.
  return pino(base, destination === process.stdout ? pino.destination({ fd: 1, sync: false }) : destination);
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
