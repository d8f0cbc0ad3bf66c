// The client's address, derived through server.trustProxy the way Express does (proxy-addr).
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { Config } from '../config/schema.js';

export type ClientIpResolver = (req: IncomingMessage) => string;

export function createClientIpResolver(trustProxy: Config['server']['trustProxy']): ClientIpResolver {
  if (trustProxy === false) return (req) => unmapIpv4(req.socket.remoteAddress ?? '');
  const trust = trustProxy === true ? () => true : proxyAddr.compile([...trustProxy]);
  return (req) => unmapIpv4(proxyAddr(req, trust));
}

/** "::ffff:203.0.113.7" → "203.0.113.7": Sentry and people read the IPv4 form. */
function unmapIpv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
