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

export class CorsPolicy {
  readonly #origins: '*' | ReadonlySet<string> | false;

  constructor(options: Config['cors']) {
    const { origins } = options;
    this.#origins = origins === '*' || origins === false ? origins : new Set(origins.map((origin) => new URL(origin).origin));
  }

  /** Decides a POST: requests without Origin (servers, same-origin GETs) need no CORS headers. */
  check(origin: string | undefined): CorsDecision {
    if (this.#origins === false || origin === undefined) return NO_HEADERS;
    if (this.#origins !== '*' && !this.#origins.has(origin)) return { allowed: false };
    return {
      allowed: true,
      headers: { 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': EXPOSED_HEADERS },
    };
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
