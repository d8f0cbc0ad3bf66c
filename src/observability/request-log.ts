// What the log says about requests (log.requests): every request as one line ("all"); by default
// ("summary") one line per request that needs an operator (5xx, spooled) and a summary line of the rest
// every log.summaryIntervalMs, health probes and scrapes left out; or nothing ("off"). A tunnel at
// 10,000 envelopes/s would otherwise write 10,000 lines/s that say "forwarded, 200" — metrics count
// those better.
import type { Config } from '../config/schema.js';
import type { RequestRecord } from '../core/exchange.js';
import { type Logger, type RecordLine, recordWriter } from './logger.js';

export interface RequestLog {
  /** `traffic` is false for health probes and metrics scrapes: "all" logs them, "summary" leaves them out. */
  write(record: RequestRecord, traffic: boolean): void;
  /** Writes the last summary and stops its timer. */
  close(): void;
}

const OFF: RequestLog = { write() {}, close() {} };

export function createRequestLog(logger: Logger, options: Config['log']): RequestLog {
  if (options.requests === 'off') return OFF;
  const line = recordWriter(logger, 'request');
  if (options.requests === 'all') {
    return {
      write(record) {
        line(record.status >= 500 ? 'error' : 'info', record);
      },
      close() {},
    };
  }
  return new SummaryLog(logger, line, options.summaryIntervalMs);
}

/** Counts per interval; one line per request only for those an operator acts on. */
class SummaryLog implements RequestLog {
  readonly #logger: Logger;
  readonly #line: RecordLine;
  readonly #timer: NodeJS.Timeout;
  #since = Date.now();
  #requests = 0;
  #bytesIn = 0;
  #outcomes: Record<string, number> = {};
  #codes: Record<string, number> = {};

  constructor(logger: Logger, line: RecordLine, intervalMs: number) {
    this.#logger = logger;
    this.#line = line;
    this.#timer = setInterval(() => this.#flush(), intervalMs);
    this.#timer.unref();
  }

  write(record: RequestRecord, traffic: boolean): void {
    // A probe every few seconds would fill the counts (and a draining /readyz's 503s the error lines).
    if (!traffic) return;
    if (record.status >= 500) this.#line('error', record);
    else if (record.outcome === 'spooled') this.#line('warn', record);
    this.#requests++;
    this.#bytesIn += record.bytesIn;
    const outcome = record.outcome ?? 'none';
    this.#outcomes[outcome] = (this.#outcomes[outcome] ?? 0) + 1;
    if (record.code !== undefined) this.#codes[record.code] = (this.#codes[record.code] ?? 0) + 1;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#flush();
  }

  #flush(): void {
    const now = Date.now();
    if (this.#requests > 0) {
      this.#logger.info(
        { intervalMs: now - this.#since, requests: this.#requests, bytesIn: this.#bytesIn, outcomes: this.#outcomes, codes: this.#codes },
        'requests',
      );
    }
    this.#since = now;
    this.#requests = 0;
    this.#bytesIn = 0;
    this.#outcomes = {};
    this.#codes = {};
  }
}
