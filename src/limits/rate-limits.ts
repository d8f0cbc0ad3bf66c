// Sentry's rate limits, honoured: the limits each project's upstream announced (X-Sentry-Rate-Limits,
// Retry-After, a bare 429), envelope items mapped to their data category, and the header a refused
// SDK is sent so it backs off too. Spec: https://develop.sentry.dev/sdk/rate-limiting/
// Parsing and bookkeeping are @sentry/core's own (updateRateLimits, isRateLimited, disabledUntil,
// envelopeItemTypeToDataCategory), so the tunnel reads the headers exactly as the SDK does.
import type { DataCategory, EnvelopeItemType } from '@sentry/core';
import type { UpstreamReply } from '../upstream/upstream.js';

/** Data category (or "all") → when its limit ends, in ms since the epoch; @sentry/core's RateLimits. */
export type RateLimits = Record<string, number>;

type SentryCore = typeof import('@sentry/core');

let sentryCore: Promise<SentryCore> | undefined;

/**
 * @sentry/core, loaded on first need: importing it costs a few hundred milliseconds, which start-up
 * and the many tunnels that never see a limit should not pay.
 */
export function loadSentryCore(): Promise<SentryCore> {
  sentryCore ??= import('@sentry/core');
  return sentryCore;
}

/** Whether a reply from Sentry says anything about rate limits (only then is @sentry/core needed). */
export function announcesLimits(reply: UpstreamReply): boolean {
  return reply.status === 429 || reply.headers['x-sentry-rate-limits'] !== undefined || reply.headers['retry-after'] !== undefined;
}

/**
 * The limits as an X-Sentry-Rate-Limits header, remaining time rounded up to whole seconds; "all" is
 * written with an empty category list. The scope says where the tunnel keeps them: per DSN key.
 */
export function formatRateLimits(limits: RateLimits, now: number): string {
  const bySeconds = new Map<number, string[]>();
  for (const [category, until] of Object.entries(limits)) {
    if (until <= now) continue;
    const seconds = Math.ceil((until - now) / 1000);
    const group = bySeconds.get(seconds) ?? [];
    group.push(category === 'all' ? '' : category);
    bySeconds.set(seconds, group);
  }
  const parts: string[] = [];
  for (const [seconds, categories] of bySeconds) {
    if (categories.includes('')) parts.push(`${seconds}::key`);
    const named = categories.filter((category) => category !== '');
    if (named.length > 0) parts.push(`${seconds}:${named.join(';')}:key`);
  }
  return parts.join(', ');
}

/** What the active limits say about an envelope. */
export interface Verdict {
  /** Every item (or everything) is limited: answer 429 locally. */
  readonly limited: boolean;
  /** The limited categories in the order of the envelope's items; undefined when everything is limited ("all"). */
  readonly categories?: readonly string[];
  readonly retryAfterMs: number;
}

/** Sentry states limits in whole seconds: a limit that moved by less than this is the same limit restated. */
const RESTATED_MS = 1_000;

/** The active Sentry limits per project; while a project has none, a lookup is one Map miss. */
export class SentryLimitCache {
  readonly #byProject = new Map<string, RateLimits>();

  /** Records what a reply from Sentry announced; resolves to the limits that are new or moved, if any. */
  async update(project: string, reply: UpstreamReply): Promise<RateLimits | undefined> {
    if (!announcesLimits(reply)) return undefined;
    const core = await loadSentryCore();
    const now = Date.now();
    const before = this.#byProject.get(project) ?? {};
    const after = core.updateRateLimits(before, { statusCode: reply.status, headers: lowerCaseHeaders(reply) }, now);
    const changed: RateLimits = {};
    for (const [category, until] of Object.entries(after)) {
      const previous = before[category];
      if (until > now && (previous === undefined || previous <= now || Math.abs(until - previous) >= RESTATED_MS)) changed[category] = until;
    }
    this.#byProject.set(project, prune(after, now));
    return Object.keys(changed).length > 0 ? changed : undefined;
  }

  /** Applies limits another replica learned (latest wins, like updateRateLimits); expired ones are ignored. */
  apply(project: string, changed: RateLimits): void {
    const now = Date.now();
    const merged = { ...this.#byProject.get(project) };
    let any = false;
    for (const [category, until] of Object.entries(changed)) {
      if (typeof until !== 'number' || !(until > now)) continue;
      merged[category] = until;
      any = true;
    }
    if (!any) return;
    this.#byProject.set(project, prune(merged, now));
    // Checks need @sentry/core; start loading it now rather than on the next request.
    void loadSentryCore();
  }

  /** The project's active limits, or undefined (the common case) when it has none. */
  active(project: string): RateLimits | undefined {
    const limits = this.#byProject.get(project);
    if (limits === undefined) return undefined;
    const now = Date.now();
    const live = prune(limits, now);
    if (Object.keys(live).length === 0) {
      this.#byProject.delete(project);
      return undefined;
    }
    return live;
  }

  /**
   * Whether the envelope may go on. `readItemTypes` is called only when an "all" limit does not
   * already decide; undefined from it (a streamed body, items unknown) lets the envelope go on.
   */
  async judge(limits: RateLimits, readItemTypes: () => Promise<readonly string[] | undefined>): Promise<Verdict> {
    const core = await loadSentryCore();
    // "all" is no DataCategory, but disabledUntil(limits, "all") reads exactly the catch-all limit.
    const all = 'all' as DataCategory;
    if (core.isRateLimited(limits, all)) return { limited: true, retryAfterMs: core.disabledUntil(limits, all) - Date.now() };
    const itemTypes = await readItemTypes();
    if (itemTypes === undefined || itemTypes.length === 0) return { limited: false, retryAfterMs: 0 };
    const now = Date.now();
    // Unknown item types map to their own name, as in the SDK; @sentry/core's types list only the known ones.
    const categories = new Set(itemTypes.map((type) => core.envelopeItemTypeToDataCategory(type as EnvelopeItemType)));
    let retryAfterMs = 0;
    for (const category of categories) {
      if (!core.isRateLimited(limits, category, now)) return { limited: false, retryAfterMs: 0 };
      // The envelope is welcome again only once its last limit ends (Relay answers with the longest, too).
      retryAfterMs = Math.max(retryAfterMs, core.disabledUntil(limits, category) - now);
    }
    return { limited: true, categories: [...categories], retryAfterMs };
  }
}

function prune(limits: RateLimits, now: number): RateLimits {
  const live: RateLimits = {};
  for (const [category, until] of Object.entries(limits)) if (until > now) live[category] = until;
  return live;
}

/** updateRateLimits reads `x-sentry-rate-limits` and `retry-after`; the reply's names are lower case already. */
function lowerCaseHeaders(reply: UpstreamReply): { 'x-sentry-rate-limits': string | null; 'retry-after': string | null } {
  return {
    'x-sentry-rate-limits': reply.headers['x-sentry-rate-limits'] ?? null,
    'retry-after': reply.headers['retry-after'] ?? null,
  };
}
