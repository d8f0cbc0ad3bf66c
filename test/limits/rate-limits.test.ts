// Sentry's rate-limit headers read as the SDK reads them, items mapped to data categories, and the
// header a refused SDK gets back.
import { describe, expect, it } from 'vitest';
import { SentryLimitCache, announcesLimits, formatRateLimits } from '../../src/limits/rate-limits.js';
import type { UpstreamReply } from '../../src/upstream/upstream.js';

const reply = (status: number, headers: Record<string, string> = {}): UpstreamReply => ({ status, headers, body: Buffer.alloc(0) });
const types = (...list: string[]) => () => Promise.resolve(list);

async function limitsAfter(...replies: UpstreamReply[]) {
  const cache = new SentryLimitCache();
  for (const r of replies) await cache.update('web', r);
  return { cache, limits: cache.active('web') };
}

describe('reading what Sentry announced', () => {
  it('takes categories, several limits and ignores scope, reason code and spaces', async () => {
    const before = Date.now();
    const { limits } = await limitsAfter(reply(429, { 'x-sentry-rate-limits': '60:error;attachment:organization:quota_exceeded, 5:transaction:key' }));
    expect(Object.keys(limits ?? {}).sort()).toEqual(['attachment', 'error', 'transaction']);
    expect(limits?.error).toBeGreaterThanOrEqual(before + 60_000);
    expect(limits?.transaction).toBeLessThan(before + 60_000);
  });

  it('empty categories mean all', async () => {
    const { limits } = await limitsAfter(reply(429, { 'x-sentry-rate-limits': '30::organization' }));
    expect(Object.keys(limits ?? {})).toEqual(['all']);
  });

  it('a 429 with only Retry-After limits everything for that long', async () => {
    const before = Date.now();
    const { limits } = await limitsAfter(reply(429, { 'retry-after': '7' }));
    expect(Object.keys(limits ?? {})).toEqual(['all']);
    expect(limits?.all).toBeGreaterThanOrEqual(before + 7_000);
    expect(limits?.all).toBeLessThan(before + 8_000);
  });

  it('a 429 with neither header limits everything for 60 s', async () => {
    const before = Date.now();
    const { limits } = await limitsAfter(reply(429));
    expect(limits?.all).toBeGreaterThanOrEqual(before + 60_000);
    expect(limits?.all).toBeLessThan(before + 61_000);
  });

  it('reads the header from a 200 too, and nothing from a plain 200', async () => {
    expect((await limitsAfter(reply(200))).limits).toBeUndefined();
    expect(announcesLimits(reply(200))).toBe(false);
    expect(Object.keys((await limitsAfter(reply(200, { 'x-sentry-rate-limits': '60:replay:key' }))).limits ?? {})).toEqual(['replay']);
  });

  it('reports only limits that are new or moved, not the same limit restated', async () => {
    const cache = new SentryLimitCache();
    expect(await cache.update('web', reply(429, { 'x-sentry-rate-limits': '60:error:key' }))).toHaveProperty('error');
    expect(await cache.update('web', reply(200, { 'x-sentry-rate-limits': '60:error:key' }))).toBeUndefined();
    expect(Object.keys((await cache.update('web', reply(200, { 'x-sentry-rate-limits': '60:error:key, 30:span:key' }))) ?? {})).toEqual(['span']);
  });

  it('forgets limits once they end', async () => {
    const cache = new SentryLimitCache();
    cache.apply('web', { error: Date.now() + 30 });
    expect(cache.active('web')).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(cache.active('web')).toBeUndefined();
    cache.apply('web', { error: Date.now() - 1, transaction: 'soon' as unknown as number });
    expect(cache.active('web')).toBeUndefined();
  });
});

describe('judging an envelope by its items', () => {
  it('maps item types to data categories as Sentry does', async () => {
    const mapping: [string, string][] = [
      ['event', 'error'],
      ['transaction', 'transaction'],
      ['attachment', 'attachment'],
      ['session', 'session'],
      ['sessions', 'session'],
      ['replay_event', 'replay'],
      ['replay_recording', 'replay'],
      ['feedback', 'feedback'],
      ['profile', 'profile'],
      ['profile_chunk', 'profile'],
      ['check_in', 'monitor'],
      ['log', 'log_item'],
      ['span', 'span'],
      ['client_report', 'internal'],
      ['brand_new_type', 'brand_new_type'],
    ];
    const cache = new SentryLimitCache();
    for (const [type, category] of mapping) {
      const limits = { [category]: Date.now() + 60_000 };
      const verdict = await cache.judge(limits, types(type));
      expect({ type, ...verdict, retryAfterMs: undefined }).toEqual({ type, limited: true, categories: [category], retryAfterMs: undefined });
    }
  });

  it('refuses only when every item is limited, and names the longest wait', async () => {
    const cache = new SentryLimitCache();
    const now = Date.now();
    const limits = { error: now + 60_000, attachment: now + 10_000 };
    expect((await cache.judge(limits, types('event', 'client_report'))).limited).toBe(false);
    const verdict = await cache.judge(limits, types('event', 'attachment'));
    expect(verdict.limited).toBe(true);
    expect(verdict.categories).toEqual(['error', 'attachment']);
    expect(verdict.retryAfterMs).toBeGreaterThan(59_000);
  });

  it('an "all" limit refuses without reading the items; unknown items pass otherwise', async () => {
    const cache = new SentryLimitCache();
    let read = false;
    const verdict = await cache.judge({ all: Date.now() + 5_000 }, () => {
      read = true;
      return Promise.resolve(['event']);
    });
    expect(verdict).toMatchObject({ limited: true });
    expect(verdict.categories).toBeUndefined();
    expect(read).toBe(false);
    expect((await cache.judge({ error: Date.now() + 5_000 }, () => Promise.resolve(undefined))).limited).toBe(false);
    expect((await cache.judge({ error: Date.now() + 5_000 }, types())).limited).toBe(false);
  });
});

describe('formatRateLimits', () => {
  it('writes the remaining whole seconds per group, "all" as empty categories, and drops ended limits', () => {
    const now = 1_000_000;
    const header = formatRateLimits({ error: now + 59_001, attachment: now + 60_000, all: now + 5_000, span: now - 1 }, now);
    expect(header).toBe('60:error;attachment:key, 5::key');
  });

  it('is read back by the same parser the SDK uses', async () => {
    const now = Date.now();
    const header = formatRateLimits({ error: now + 42_000, all: now + 3_000 }, now);
    const { limits } = await limitsAfter(reply(429, { 'x-sentry-rate-limits': header }));
    expect(Math.round(((limits?.error ?? 0) - now) / 1000)).toBe(42);
    expect(Math.round(((limits?.all ?? 0) - now) / 1000)).toBe(3);
  });
});
