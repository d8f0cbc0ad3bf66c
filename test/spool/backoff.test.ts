import { describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMIT_MS, backoffMs, parseRetryAfter, parseSentryRateLimits, sentryWaitMs } from '../../src/spool/backoff.js';

const retry = { initialMs: 100, maxMs: 1_000 };
const reply = (status: number, headers: Record<string, string> = {}) => ({ status, headers, body: Buffer.alloc(0) });

describe('backoffMs', () => {
  it('grows exponentially, stays between initialMs and maxMs, and is jittered', () => {
    expect(backoffMs(1, retry, () => 0)).toBe(100);
    expect(backoffMs(1, retry, () => 1)).toBe(100);
    expect(backoffMs(3, retry, () => 1)).toBe(400);
    expect(backoffMs(3, retry, () => 0)).toBe(200);
    expect(backoffMs(10, retry, () => 1)).toBe(1_000);
    expect(backoffMs(10, retry, () => 0)).toBe(500);
    expect(backoffMs(10_000, retry, () => 0.5)).toBe(750);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2_000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('parseSentryRateLimits', () => {
  it('tells limits on every category from limits on some', () => {
    expect(parseSentryRateLimits('60:error;transaction:organization:quota, 2:transaction:key')).toEqual({ anyMs: 60_000, allMs: undefined });
    expect(parseSentryRateLimits('5::organization, 30:error:key')).toEqual({ anyMs: 30_000, allMs: 5_000 });
    expect(parseSentryRateLimits('garbage, -1::x')).toEqual({ anyMs: undefined, allMs: undefined });
  });
});

describe('sentryWaitMs', () => {
  it('follows the rate-limiting spec for 429: rate-limit header, then Retry-After, then 60 s', () => {
    expect(sentryWaitMs(reply(429, { 'x-sentry-rate-limits': '7:error:key', 'retry-after': '1' }))).toBe(7_000);
    expect(sentryWaitMs(reply(429, { 'retry-after': '3' }))).toBe(3_000);
    expect(sentryWaitMs(reply(429))).toBe(DEFAULT_RATE_LIMIT_MS);
  });
  it('for other replies, only all-category limits and Retry-After count', () => {
    expect(sentryWaitMs(reply(200, { 'x-sentry-rate-limits': '7:error:key' }))).toBeUndefined();
    expect(sentryWaitMs(reply(200, { 'x-sentry-rate-limits': '7::key' }))).toBe(7_000);
    expect(sentryWaitMs(reply(503, { 'retry-after': '2' }))).toBe(2_000);
    expect(sentryWaitMs(reply(503))).toBeUndefined();
  });
});
