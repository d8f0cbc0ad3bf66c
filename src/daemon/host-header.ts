// HTTP/1.1 requests without Host (RFC 9112 §3.2: answer 400): refused by the tunnel from the catalogue
// instead of by node:http with an empty body (the server runs with requireHostHeader: false for that).
import type { IncomingMessage } from 'node:http';
import type { Answer } from '../core/exchange.js';
import { TunnelError } from '../errors.js';

export function missingHost(req: IncomingMessage): boolean {
  return req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
}

export async function refuseMissingHost(): Promise<Answer> {
  throw new TunnelError('bad_request', { message: 'HTTP/1.1 requests must carry a Host header.' });
}
