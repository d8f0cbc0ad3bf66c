// CORS for the tunnel path: which origins may post, and the headers that let a cross-origin SDK read
// Sentry's rate-limit answers. https://fetch.spec.whatwg.org/#http-cors-protocol
import type { Config } from '../config/schema.js';
import { type InboundHeaders, header } from './exchange.js';

export const EXPOSED_HEADERS = 'X-Sentry-Rate-Limits, Retry-After, X-Sentry-Error';
export const ALLOWED_METHODS = 'POST, OPTIONS';
const PREFLIGHT_MAX_AGE_SECONDS = '86400';

export type CorsDecision =
  | { readonly allowed: true; readonly headers: Readonly<Record<string, string>> }
  | { readonly allowed: false };

const NO_HEADERS: CorsDecision = { allowed: true, headers: {} };
const REFUSED: CorsDecision = { allowed: false };
/** Distinct origins whose answer is kept with `origins: "*"`; past that the memory starts over. */
const MAX_REMEMBERED_ORIGINS = 1024;
/** Up to this many allowed origins are compared one by one rather than looked up. */
const SCANNED_ORIGINS = 8;

function allow(origin: string): CorsDecision {
  return { allowed: true, headers: Object.freeze({ 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': EXPOSED_HEADERS }) };
}

export class CorsPolicy {
  readonly #origins: '*' | ReadonlySet<string> | false;
  /** The answer per origin, made once: a POST's CORS check is a Map hit, no objects per request. */
  readonly #decisions = new Map<string, CorsDecision>();
  /**
   * A short allowlist's answers as a list: the Origin header is a new string with every request, which
   * a Map hit hashes first; comparing it with a few allowed origins costs less (bench:instructions).
   */
  readonly #scanned: readonly (readonly [string, CorsDecision])[] | undefined;

  constructor(options: Config['cors']) {
    const { origins } = options;
    this.#origins = origins === '*' || origins === false ? origins : new Set(origins.map((origin) => new URL(origin).origin));
    if (this.#origins instanceof Set) for (const origin of this.#origins) this.#decisions.set(origin, allow(origin));
    this.#scanned = this.#origins instanceof Set && this.#origins.size <= SCANNED_ORIGINS ? [...this.#decisions] : undefined;
  }

  /** Decides a POST: requests without Origin (servers, same-origin GETs) need no CORS headers. */
  check(origin: string | undefined): CorsDecision {
    if (this.#origins === false || origin === undefined) return NO_HEADERS;
    const scanned = this.#scanned;
    if (scanned !== undefined) {
      for (const [allowed, decision] of scanned) if (allowed === origin) return decision;
      return REFUSED;
    }
    const known = this.#decisions.get(origin);
    if (known !== undefined) return known;
    if (this.#origins !== '*') return REFUSED;
    if (this.#decisions.size >= MAX_REMEMBERED_ORIGINS) this.#decisions.clear();
    const decision = allow(origin);
    this.#decisions.set(origin, decision);
    return decision;
  }

  /** Decides an OPTIONS preflight. */
  preflight(headers: InboundHeaders): CorsDecision {
    const origin = header(headers, 'origin');
    const decision = this.check(origin);
    if (!decision.allowed || this.#origins === false || origin === undefined) return decision;
    const requested = header(headers, 'access-control-request-headers');
    return {
      allowed: true,
      headers: {
        'access-control-allow-origin': origin,
        vary: 'Origin, Access-Control-Request-Headers',
        'access-control-allow-methods': ALLOWED_METHODS,
        'access-control-allow-headers': requested || 'Content-Type, Content-Encoding',
        'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
      },
    };
  }
}
