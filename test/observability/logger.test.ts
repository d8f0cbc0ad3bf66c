// recordWriter: request lines written without pino's per-key serialisation are the lines pino writes.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../../src/core/exchange.js';
import { createLogger, recordWriter } from '../../src/observability/logger.js';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  return { stream, lines };
}

const withoutTime = (line: string) => line.replace(/"time":\d+/, '"time":0');

// An unset optional field (pino and JSON.stringify both leave it out) is part of the comparison.
const record: RequestRecord = {
  reqId: 'a1b2c3-1',
  method: 'POST',
  path: '/tunnel/"quoted"/ünïcode\u2028',
  route: '/tunnel',
  status: 429,
  outcome: 'rate_limited',
  project: 'web',
  bytesIn: 2224,
  durationMs: 1.25,
  code: undefined,
};

describe('recordWriter', () => {
  it('writes, for a createLogger logger, byte for byte the line pino writes (time aside)', () => {
    const viaPino = capture();
    const direct = capture();
    createLogger({ level: 'info', format: 'json', requests: 'all', summaryIntervalMs: 60_000 }, viaPino.stream).info(record, 'request');
    recordWriter(createLogger({ level: 'info', format: 'json', requests: 'all', summaryIntervalMs: 60_000 }, direct.stream), 'request')('info', record);
    expect(direct.lines).toHaveLength(1);
    expect(withoutTime(direct.lines[0] as string)).toBe(withoutTime(viaPino.lines[0] as string));
    expect(JSON.parse(direct.lines[0] as string)).toMatchObject({ level: 30, pid: process.pid, msg: 'request', path: record.path, status: 429 });
  });

  it('keeps the logger level: below it nothing is written, above it the level number is pino\'s', () => {
    const { stream, lines } = capture();
    const line = recordWriter(createLogger({ level: 'warn', format: 'json', requests: 'all', summaryIntervalMs: 60_000 }, stream), 'request');
    line('info', record);
    line('error', record);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 50, msg: 'request' });
  });

  it('logs through pino for any other logger, so a child keeps its bindings', () => {
    const { stream, lines } = capture();
    const child = createLogger({ level: 'info', format: 'json', requests: 'all', summaryIntervalMs: 60_000 }, stream).child({ component: 'tunnel' });
    // A record is never meant to hold a DSN; were one to slip in, pino's redaction still applies on this path.
    recordWriter(child, 'request')('info', { ...record, dsn: 'https://secretkey@o1.ingest.sentry.io/2' } as RequestRecord);
    const parsed = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(parsed).toMatchObject({ component: 'tunnel', msg: 'request', dsn: '[redacted]' });
  });
});
