// The way to Sentry: one undici Agent with keep-alive pools per ingest origin, connect and response
// timeouts, never following redirects (undici 7 follows none unless asked), requests sent with dispatch()
// and answered through ReplyHandler, and the header allowlists in both directions.
import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import { Agent } from 'undici';
import type { Config } from '../config/schema.js';
import type { UpstreamTarget } from '../core/dsn.js';
import { TunnelError } from '../errors.js';
import { ReplyHandler } from './reply-handler.js';

export { RESPONSE_HEADER_ALLOWLIST, toTunnelError } from './reply-handler.js';

export interface OutboundEnvelope {
  /** The configured project's name. */
  readonly project: string;
  readonly target: UpstreamTarget;
  /** The parsed envelope header line (event_id, dsn, sdk, …); unknown fields kept. */
  readonly header: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
  /** The untouched wire bytes. */
  readonly body: Buffer | Readable;
  /** Aborts the request (shutdown, the drainer stopping); the Forward then rejects. */
  readonly signal?: AbortSignal;
}

export interface UpstreamReply {
  readonly status: number;
  /** Only the allowlisted response headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Set when Sentry did not take the envelope and the spool did: this reply is the tunnel's own 200. */
  readonly spooled?: { readonly cause: string; readonly upstreamStatus?: number };
}

/** One step towards Sentry; cross-cutting behaviour (limits, back-off, spooling) wraps a Forward. */
export type Forward = (envelope: OutboundEnvelope) => Promise<UpstreamReply>;

/** Told once how a call to Sentry ended: a Forward's promise as two callbacks. */
export interface ReplySink {
  replied(reply: UpstreamReply): void;
  failed(error: unknown): void;
}

/**
 * A Forward in callback form, the chain inside the tunnel (upstream, metrics, the concurrency gate and
 * Sentry's limits): the pipeline is the sink of the last step, so a forward takes no promise, reaction
 * or closure on its way (bench:instructions −3 % per forward). Wrappers written against Forward (an
 * app's wrapForward, the spool) are joined with forwardOf() and sendOf().
 */
export type Send = (envelope: OutboundEnvelope, sink: ReplySink) => void;

/** `send` as a Forward. */
export function forwardOf(send: Send): Forward {
  return (envelope) => new Promise((resolve, reject) => send(envelope, { replied: resolve, failed: reject }));
}

/** `forward` as a Send: its promise settles the sink. */
export function sendOf(forward: Forward): Send {
  return (envelope, sink) => {
    promiseOf(forward, envelope).then(
      (reply) => sink.replied(reply),
      (error: unknown) => sink.failed(error),
    );
  };
}

/**
 * Told how each call to Sentry ended, from inside the call (metrics). A wrapper would have to wait on
 * the call's promise to learn the same, at the cost of a promise and a reaction per forward
 * (bench:instructions).
 */
export interface UpstreamObserver {
  /** Sentry answered `status`; `startedAt` is when the call began (performance.now()). */
  answered(envelope: OutboundEnvelope, status: number, startedAt: number): void;
  /** No usable answer: `error` as the call rejects with it; `clientFailed` when the client's body broke off first. */
  failed(envelope: OutboundEnvelope, error: TunnelError, clientFailed: boolean, startedAt: number): void;
}

/**
 * `step(argument)`'s promise, a synchronous throw turned into its rejection as an async function would:
 * for wrappers that chain with then() instead of being async functions (one promise fewer per forward).
 */
export function promiseOf<A, T>(step: (argument: A) => Promise<T>, argument: A): Promise<T> {
  try {
    return step(argument);
  } catch (error) {
    return Promise.reject(error);
  }
}

export class Upstream {
  readonly #agent: Agent;

  constructor(options: Config['upstream']) {
    this.#agent = new Agent({
      connections: options.maxConnections,
      connect: { timeout: options.connectTimeoutMs },
      // undici arms headersTimeout once the request body is sent, so slow uploads are not cut off.
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  /** dispatch() with a handler of its own instead of request(): no response stream, no promise chain per forward. */
  readonly send: Send = (envelope, sink) => this.#dispatch(envelope, sink, undefined);

  /** send, as a Forward. */
  readonly forward: Forward = forwardOf(this.send);

  /** send, each call's end told to `observer` as it settles. */
  observedBy(observer: UpstreamObserver): Send {
    return (envelope, sink) => this.#dispatch(envelope, sink, observer);
  }

  #dispatch(envelope: OutboundEnvelope, sink: ReplySink, observer: UpstreamObserver | undefined): void {
    const handler = new ReplyHandler(sink, envelope, observer);
    this.#agent.dispatch({ origin: envelope.target.origin, path: envelope.target.path, method: 'POST', headers: envelope.headers, body: envelope.body }, handler);
  }

  /** Lets in-flight requests finish, then closes the pools. */
  close(): Promise<void> {
    return this.#agent.close();
  }

  destroy(): Promise<void> {
    return this.#agent.destroy();
  }
}

/** Whether `error` came from the network (a catalogue error or a Node/undici error code), not from a bug in a Forward. */
export function isTransportFailure(error: unknown): boolean {
  if (error instanceof TunnelError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  // errno codes (ECONNRESET, EAI_AGAIN) are the network's; ERR_* codes (ERR_INVALID_ARG_TYPE) are programming errors.
  return typeof code === 'string' && (code.startsWith('UND_ERR') || (/^E[A-Z_]+$/.test(code) && !code.startsWith('ERR_')));
}
