// The client's address, derived through server.trustProxy the way Express does (proxy-addr), or
// undefined when the transport knows no peer (a route handler without a socket) and no trusted header tells.
import proxyAddr from 'proxy-addr';
import type { Config } from '../config/schema.js';
import type { InboundHeaders } from './exchange.js';

export type ClientIpResolver = (headers: InboundHeaders, peerAddress: string | undefined) => string | undefined;

export function createClientIpResolver(trustProxy: Config['server']['trustProxy']): ClientIpResolver {
  if (trustProxy === false) return (_headers, peer) => (peer ? unmapIpv4(peer) : undefined);
  const trust = trustProxy === true ? () => true : proxyAddr.compile([...trustProxy]);
  return (headers, peer) => {
    if (peer === undefined) {
      // No socket: with trustProxy true the nearest hop is trusted anyway; a CIDR list cannot be checked.
      if (trustProxy !== true) return undefined;
      const forwarded = forwardedFor(headers);
      return forwarded ? unmapIpv4(forwarded) : undefined;
    }
    // proxy-addr reads only these two fields of a request.
    return unmapIpv4(proxyAddr({ headers, socket: { remoteAddress: peer } } as unknown as Parameters<typeof proxyAddr>[0], trust));
  };
}

/** The leftmost X-Forwarded-For address: what proxy-addr picks when every hop is trusted. */
function forwardedFor(headers: InboundHeaders): string | undefined {
  const value = headers['x-forwarded-for'];
  const list = Array.isArray(value) ? value.join(',') : value;
  const first = list?.split(',')[0]?.trim();
  return first || undefined;
}

/** "::ffff:203.0.113.7" → "203.0.113.7": Sentry and people read the IPv4 form. */
function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
