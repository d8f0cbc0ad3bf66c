// Web fetch ↔ the pipeline: a Request is read as an InboundRequest (its body stream adapted once),
// and the Answer becomes one Response. Web streams live only here.
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { Answer, InboundRequest } from '../core/exchange.js';

export interface FetchInfo {
  /** The client's address, when the framework knows it (SvelteKit's getClientAddress(), Bun's server.requestIP()). */
  readonly clientAddress?: string | undefined;
  /** A configured project's name: as POST {server.path}/<name> does in the daemon. */
  readonly project?: string | undefined;
  /**
   * Ignored. Next.js calls a route handler with `(request, { params })`: declaring the field keeps
   * `export const POST = tunnel.fetch` through `next build`'s type check (a context with no property
   * in common with FetchInfo is a type error).
   */
  readonly params?: unknown;
}

export function fetchInbound(request: Request, info: FetchInfo | undefined): InboundRequest {
  const headers: Record<string, string> = {};
  // Header names come lower-cased from Headers; repeated values are already joined with ", ".
  for (const [name, value] of request.headers) headers[name] = value;
  let bodyAlreadyRead: string | undefined;
  if (request.bodyUsed) {
    bodyAlreadyRead = 'The Request body was read before the tunnel saw it (request.text(), .json() or .formData() ran first); hand the tunnel the Request unread.';
  } else if (request.body === null && (Number(headers['content-length'] ?? 0) > 0 || headers['transfer-encoding'] !== undefined)) {
    bodyAlreadyRead =
      'The framework handed the tunnel this POST without its body (SvelteKit does so when there is no Content-Type, as for Session Replay): ' +
      'serve the tunnel with tunnel.middleware in front of the framework (see the README).';
  }
  return {
    method: request.method,
    path: pathOfUrl(request.url),
    headers,
    body: request.body === null || request.bodyUsed ? Readable.from([]) : Readable.fromWeb(request.body as NodeReadableStream<Uint8Array>),
    peerAddress: info?.clientAddress || undefined,
    bodyAlreadyRead,
  };
}

export function toResponse(answer: Answer): Response {
  const body = answer.status === 204 || answer.status === 304 ? null : (answer.body ?? null);
  return new Response(body, { status: answer.status, headers: answer.headers });
}

function pathOfUrl(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '/';
  }
}
