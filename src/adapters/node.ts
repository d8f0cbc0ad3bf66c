// node:http ↔ the pipeline: an IncomingMessage is read as an InboundRequest as it is (no copy, no Web
// Request), and an Answer is written with one writeHead + end.
import { Buffer } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Answer, InboundRequest } from '../core/exchange.js';

export function nodeInbound(req: IncomingMessage, path: string): InboundRequest {
  return {
    method: req.method ?? 'GET',
    path,
    headers: req.headers,
    body: req,
    peerAddress: req.socket?.remoteAddress,
    bodyAlreadyRead: bodyAlreadyRead(req),
    // IncomingMessage emits 'error' only when it has listeners (node's _http_incoming onError); an
    // aborted upload always emits 'close'.
    closeReportsAbort: true,
  };
}

/**
 * Why the body can no longer be read as it arrived: a body parser (Express's json/text/raw, Next.js
 * Pages' bodyParser) consumed it before the tunnel, and what it kept is not the wire bytes.
 */
function bodyAlreadyRead(req: IncomingMessage): string | undefined {
  if (!req.readableDidRead && !req.readableEnded && (req as { body?: unknown }).body === undefined) return undefined;
  return (
    'The request body was read before the tunnel saw it (a body parser ran first), so its exact bytes are gone: mount the tunnel ' +
    'before express.json()/text()/raw(), or set `export const config = { api: { bodyParser: false } }` in a Next.js Pages API route.'
  );
}

/**
 * A body no byte of which was read, declared at most this long, is cheaper to read and discard
 * (node:http does so once the answer is written) than the reconnection closing would cost the client:
 * a refusal before the body (the per-client budget) keeps the connection.
 */
const DISCARDED_BODY_BYTES = 64 * 1024;

/**
 * Writes `answer` unless the client is gone; closes the connection when a large body was not read to
 * the end. True when the answer closes the connection.
 */
export function writeAnswer(req: IncomingMessage, res: ServerResponse, answer: Answer, closing: boolean): boolean {
  if (res.headersSent || res.destroyed) return false;
  const { headers, body } = answer;
  // Any other unread body would have to be drained before the next request on this connection: close it instead.
  if (closing || (!req.complete && !discardable(req))) headers.connection = 'close';
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(answer.status, headers);
  res.end(body);
  return headers.connection === 'close';
}

function discardable(req: IncomingMessage): boolean {
  if (req.readableDidRead) return false;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) <= DISCARDED_BODY_BYTES;
}
