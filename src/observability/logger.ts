// The pino logger: JSON lines for machines, pino-pretty on a terminal. Callers log only chosen fields
// (never bodies or DSN keys); the redact list is a second line of defence.
import { createRequire } from 'node:module';
import { type Logger, pino } from 'pino';
import type { Config } from '../config/schema.js';
import type { RequestRecord } from '../core/exchange.js';

export type { Logger };

/** The longest a log line waits in the stdout buffer. */
const FLUSH_INTERVAL_MS = 200;

const REDACT = ['dsn', '*.dsn', 'headers.authorization', 'headers.cookie', 'body'];
const require = createRequire(import.meta.url);

type Destination = NodeJS.WritableStream & { isTTY?: boolean };

/** Loggers made here: their options are known, so recordWriter may write their request lines itself. */
const ownLoggers = new WeakSet<Logger>();

export function createLogger(options: Config['log'], destination: Destination = process.stdout): Logger {
  const base = { level: options.level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } };
  const pretty = options.format === 'pretty' || (options.format === 'auto' && destination.isTTY === true);
  const logger = pino(base, pretty ? prettyStream(destination) : destination === process.stdout ? stdoutDestination() : destination);
  ownLoggers.add(logger);
  return logger;
}

export type RecordLevel = 'info' | 'warn' | 'error';

/** Writes one request record as a line at `level`. */
export type RecordLine = (level: RecordLevel, record: RequestRecord) => void;

/** pino's pieces of a line (lib/symbols.js), read as pino's own asJson reads them. */
const symbols = pino.symbols;
interface PinoInternals {
  readonly [symbols.lsCacheSym]: Record<number, string>;
  readonly [symbols.timeSym]: () => string;
  readonly [symbols.chindingsSym]: string;
  readonly [symbols.streamSym]: { write(line: string): void };
}

/**
 * Writes request records as `msg` lines. For a logger made by createLogger, it writes the line pino
 * would write itself: pino's level, time and bindings prefix, then one JSON.stringify of the record.
 * pino's per-key serialisation and its redaction cost twice as much per line (`npm run
 * bench:log-line`: 6.6 vs 3.1 µs). A RequestRecord is built field by field and holds neither a DSN,
 * headers nor a body, so redaction has nothing to find in it; the parameter type keeps it that way.
 * Any other logger (an app's own, a child) may have formatters, hooks or a mixin: it logs through pino.
 */
export function recordWriter(logger: Logger, msg: string): RecordLine {
  if (!ownLoggers.has(logger)) return (level, record) => logger[level](record, msg);
  const internals = logger as unknown as PinoInternals;
  const stream = internals[symbols.streamSym];
  const end = `,"msg":${JSON.stringify(msg)}}\n`;
  return (level, record) => {
    const value = logger.levels.values[level] as number;
    if (value < logger.levelVal) return;
    stream.write(`${internals[symbols.lsCacheSym][value]}${internals[symbols.timeSym]()}${internals[symbols.chindingsSym]},${JSON.stringify(record).slice(1, -1)}${end}`);
  };
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
