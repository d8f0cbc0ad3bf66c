// Notices a reverse proxy the tunnel was not told about: X-Forwarded-For or Forwarded arriving while
// server.trustProxy is off means every visitor shares the proxy's address, and so one per-client budget
// (express-rate-limit's ERR_ERL_UNEXPECTED_X_FORWARDED_FOR). Warns once, then costs one boolean check.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ClientIpResolver } from './client-ip.js';
import type { InboundHeaders } from './exchange.js';

export const UNEXPECTED_FORWARDED_HEADER = 'unexpected_forwarded_header';

/** `resolve`, plus one warning per tunnel the first time a request with a proxy header arrives untrusted. */
export function warnOnUntrustedProxyHeaders(resolve: ClientIpResolver, trustProxy: Config['server']['trustProxy'], logger: Logger): ClientIpResolver {
  if (trustProxy !== false) return resolve;
  let warned = false;
  return (headers, peer) => {
    if (!warned && peer !== undefined) {
      const header = proxyHeader(headers);
      if (header !== undefined) {
        warned = true;
        logger.warn(
          { code: UNEXPECTED_FORWARDED_HEADER, peer, header },
          `a request from ${peer} carries ${header} but server.trustProxy is false, so the tunnel uses ${peer} as the client address: ` +
            `behind a reverse proxy every visitor then shares one rateLimit.perClient budget and Sentry sees the proxy's address. ` +
            `If ${peer} is your proxy, set "server": { "trustProxy": ["${peer}"] } (its address or CIDR); this is logged once.`,
        );
      }
    }
    return resolve(headers, peer);
  };
}

function proxyHeader(headers: InboundHeaders): string | undefined {
  if (headers['x-forwarded-for'] !== undefined) return 'X-Forwarded-For';
  if (headers.forwarded !== undefined) return 'Forwarded';
  return undefined;
}
