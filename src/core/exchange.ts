// What the pipeline sees of one request and what it hands back: no node:http, no Web Request. The
// adapters (src/adapters) turn their transport's request into an InboundRequest and write the Answer.
import type { Readable } from 'node:stream';

/** Request headers with lower-case names, as node:http gives them. */
export type InboundHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface InboundRequest {
  readonly method: string;
  /** The URL path, without the query. */
  readonly path: string;
  readonly headers: InboundHeaders;
  /** The body's wire bytes. */
  readonly body: Readable;
  /** The address of the peer the transport saw (the socket), when it knows one. */
  readonly peerAddress: string | undefined;
  /**
   * A reason the body cannot be read as it arrived (a body parser ran before the tunnel), checked
   * before any byte is read: the tunnel refuses rather than forward altered bytes.
   */
  readonly bodyAlreadyRead?: string | undefined;
  /**
   * The body tells of a broken-off upload by 'close' alone and emits 'error' only to listeners, as
   * node:http's IncomingMessage does: the body reader then needs no 'error' listener.
   */
  readonly closeReportsAbort?: boolean;
}

/** An answer as plain values, written by the adapter with one writeHead + end (or one Response). */
export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer | string | undefined;
}

export type Outcome = 'forwarded' | 'rejected' | 'rate_limited' | 'filtered' | 'spooled' | 'failed';

/** What one request did, logged as one line when it ends (and counted by metrics). */
export interface RequestRecord {
  reqId: string;
  method: string;
  path: string;
  /** The configured server.path entry the request came in on (several may be configured); absent when a framework routed it. */
  route?: string;
  status: number;
  /** How the request ended: forwarded to Sentry, rejected (4xx of ours), failed (5xx of ours), … */
  outcome?: Outcome;
  code?: string;
  project?: string;
  bytesIn: number;
  durationMs: number;
  upstreamStatus?: number;
  /** Why Sentry could not be reached (never the body or the DSN). */
  cause?: string;
  /** Which limit answered 429/503, when one did (rate limiting). */
  rateLimit?: { reason: 'client' | 'project' | 'sentry' | 'overloaded'; category?: string };
  /** Items removed by processing rules, by reason (the rule) and item type. */
  dropped?: { reason: string; type: string }[];
}

/** One request and its answer as they travel through the stages. */
export interface Exchange {
  readonly inbound: InboundRequest;
  readonly record: RequestRecord;
  /** When the request began (performance.now()). */
  readonly started: number;
  /** CORS headers every answer on the tunnel path carries once the origin was allowed. */
  cors?: Readonly<Record<string, string>>;
}

/** The first value of a header (node:http joins most repeated headers itself). */
export function header(headers: InboundHeaders, name: string): string | undefined {
  return first(headers[name]);
}

/**
 * The first of a header's values: for the per-request reads, written `first(headers['user-agent'])`.
 * A constant name is a named property load, cached for the headers' shape; through header() every name
 * shares one keyed load, which sees many names and goes megamorphic (bench:perf).
 */
export function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
