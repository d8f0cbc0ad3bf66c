// How long the drainer waits before the next attempt: exponential back-off with jitter, and Sentry's
// own instructions (Retry-After, X-Sentry-Rate-Limits) read from a reply.
// Spec: https://develop.sentry.dev/sdk/expected-features/rate-limiting/
import type { UpstreamReply } from '../upstream/upstream.js';

export interface RetryOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Sentry's rule when a 429 says nothing about how long: back off for 60 seconds. */
export const DEFAULT_RATE_LIMIT_MS = 60_000;

/**
 * The wait before attempt `attempt + 1` after `attempt` failures: the exponential step capped at
 * maxMs, with "equal jitter" (between half the step and the step) so many tunnels do not retry in
 * lockstep, never below initialMs.
 */
export function backoffMs(attempt: number, options: RetryOptions, random: () => number = Math.random): number {
  const step = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return Math.min(options.maxMs, Math.max(options.initialMs, Math.round(step / 2 + (random() * step) / 2)));
}

/** Retry-After as delta-seconds or an HTTP date, in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export interface SentryLimits {
  /** The longest limit of any category. */
  readonly anyMs: number | undefined;
  /** The longest limit that covers every category (empty category list). */
  readonly allMs: number | undefined;
}

/** Reads `X-Sentry-Rate-Limits: retry_after:categories:scope[:reason_code[:namespaces]], …`. */
export function parseSentryRateLimits(value: string | undefined): SentryLimits {
  let anyMs: number | undefined;
  let allMs: number | undefined;
  for (const limit of value?.split(',') ?? []) {
    const [seconds = '', categories = ''] = limit.trim().split(':');
    const retryAfter = Number.parseFloat(seconds);
    if (!Number.isFinite(retryAfter) || retryAfter < 0) continue;
    const ms = Math.ceil(retryAfter * 1000);
    anyMs = Math.max(anyMs ?? 0, ms);
    if (categories.trim() === '') allMs = Math.max(allMs ?? 0, ms);
  }
  return { anyMs, allMs };
}

/**
 * How long Sentry told us to stay away, per the rate-limiting spec: X-Sentry-Rate-Limits wins over
 * Retry-After; a 429 with neither means 60 s. For a 429 any limited category counts (the drainer
 * does not know which categories the next entry holds); for other replies only all-category limits.
 */
export function sentryWaitMs(reply: UpstreamReply, now = Date.now()): number | undefined {
  const limits = parseSentryRateLimits(reply.headers['x-sentry-rate-limits']);
  const retryAfter = parseRetryAfter(reply.headers['retry-after'], now);
  if (reply.status === 429) return limits.anyMs ?? retryAfter ?? DEFAULT_RATE_LIMIT_MS;
  return limits.allMs ?? retryAfter;
}
