// Sentry's answer to one forward, as an undici dispatch() handler: decides at response start (redirect,
// declared size), counts each chunk against the size cap, and settles once, at the end or on an error
// (mapped to the catalogue: toTunnelError), telling an observer (metrics) how the call ended.
// It uses undici 7's native callback names (onConnect/onHeaders/…); the newer onRequestStart/… names
// are adapted to these through a wrapper object per request, which measured slower (bench/peers/passthrough.ts).
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { type Dispatcher, errors } from 'undici';
import { TunnelError } from '../errors.js';
import type { OutboundEnvelope, ReplySink, UpstreamObserver } from './upstream.js';

/** Response headers from Sentry that reach the client; everything else (Set-Cookie, HSTS, …) stays behind. */
export const RESPONSE_HEADER_ALLOWLIST = ['content-type', 'retry-after', 'x-sentry-rate-limits', 'x-sentry-error'] as const;

/** Sentry's answers are a few bytes of JSON; anything far larger is not Sentry. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** The allowlisted names by length, as bytes: most of Sentry's headers are skipped by length alone. */
const ALLOWLISTED_BY_LENGTH: ReadonlyMap<number, readonly (readonly [string, Buffer])[]> = (() => {
  const byLength = new Map<number, [string, Buffer][]>();
  for (const name of RESPONSE_HEADER_ALLOWLIST) {
    const list = byLength.get(name.length) ?? [];
    list.push([name, Buffer.from(name, 'latin1')]);
    byLength.set(name.length, list);
  }
  return byLength;
})();

/**
 * The allowlisted name `raw` spells in any case, compared byte by byte (no string per header). The
 * names are letters and '-', for which setting bit 0x20 lower-cases a letter and leaves '-' as it is;
 * no other token byte maps onto one of them.
 */
function allowlistedName(raw: Buffer): string | undefined {
  const candidates = ALLOWLISTED_BY_LENGTH.get(raw.length);
  if (candidates === undefined) return undefined;
  for (const [name, bytes] of candidates) {
    let i = 0;
    while (i < bytes.length && ((raw[i] as number) | 0x20) === bytes[i]) i++;
    if (i === bytes.length) return name;
  }
  return undefined;
}

type Abort = (reason?: Error) => void;

export class ReplyHandler implements Dispatcher.DispatchHandler {
  #abort: Abort | undefined;
  #settled = false;
  #status = 0;
  #headers: Record<string, string> = {};
  #chunks: Buffer[] = [];
  #size = 0;
  /** Why the request was aborted before undici asked for the abort function (signal already fired). */
  #reason: Error | undefined;
  readonly #onSignal: (() => void) | undefined;
  /** When the call began (performance.now()), for the observer; 0 without one. */
  readonly #startedAt: number;

  constructor(
    private readonly sink: ReplySink,
    private readonly envelope: OutboundEnvelope,
    private readonly observer: UpstreamObserver | undefined,
  ) {
    this.#startedAt = observer ? performance.now() : 0;
    const { signal } = envelope;
    if (!signal) return;
    if (signal.aborted) this.#reason = abortReason(signal);
    else {
      this.#onSignal = () => this.#cancel(abortReason(signal));
      signal.addEventListener('abort', this.#onSignal, { once: true });
    }
  }

  onConnect(abort: Abort): void {
    if (this.#reason !== undefined) abort(this.#reason);
    else this.#abort = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], _resume: () => void, _statusText: string): boolean {
    if (status < 200) return true;
    this.#status = status;
    if (status >= 300 && status < 400) {
      // The answer is still read to its end (and capped) so the connection stays reusable.
      this.#settle(new TunnelError('upstream_redirect', { message: `Sentry answered ${status}, a redirect, which the tunnel never follows.` }));
      return true;
    }
    const headers = this.#headers;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = allowlistedName(rawHeaders[i] as Buffer);
      if (name === undefined) continue;
      const value = (rawHeaders[i + 1] as Buffer).toString('latin1');
      const seen = headers[name];
      headers[name] = seen === undefined ? value : `${seen}, ${value}`;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#size += chunk.length;
    if (this.#size > MAX_RESPONSE_BYTES) {
      this.#cancel(new TunnelError('upstream_unavailable', { message: 'Sentry answered with an unexpectedly large body.' }));
      return false;
    }
    if (!this.#settled) this.#chunks.push(chunk);
    return true;
  }

  onComplete(_trailers: string[] | null): void {
    this.#unlisten();
    if (this.#settled) return;
    this.#settled = true;
    const chunks = this.#chunks;
    this.#chunks = [];
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#size);
    this.observer?.answered(this.envelope, this.#status, this.#startedAt);
    // Told from inside undici's callback: the sink answers the client now, not a microtask later.
    const reply = { status: this.#status, headers: this.#headers, body };
    try {
      this.sink.replied(reply);
    } catch (error) {
      rethrowOutsideUndici(error);
    }
  }

  /** Connection failures, timeouts, aborts (signal, size cap), and the request body's own stream failing. */
  onError(error: Error): void {
    this.#unlisten();
    const source = this.envelope.body;
    // Read before the stream is destroyed below: a body the client broke off (or that hit a limit) had failed already.
    const clientFailed = !Buffer.isBuffer(source) && source.errored !== null;
    // Like undici's request(): a body stream that is still being read is not read any further.
    if (!Buffer.isBuffer(source) && !source.destroyed) {
      source.on('error', noop);
      source.destroy(error);
    }
    this.#settle(error, clientFailed);
  }

  #cancel(reason: Error): void {
    if (this.#abort) this.#abort(reason);
    else this.#reason = reason;
  }

  #settle(cause: unknown, clientFailed = false): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#chunks = [];
    const error = toTunnelError(cause);
    this.observer?.failed(this.envelope, error, clientFailed, this.#startedAt);
    try {
      this.sink.failed(error);
    } catch (thrown) {
      rethrowOutsideUndici(thrown);
    }
  }

  #unlisten(): void {
    if (this.#onSignal) this.envelope.signal?.removeEventListener('abort', this.#onSignal);
  }
}

/** What undici's request() rejects with on an aborted signal. */
function abortReason(signal: AbortSignal): Error {
  return (signal.reason ?? new errors.RequestAbortedError()) as Error;
}

function noop(): void {}

/**
 * A sink that throws has a bug. undici would take the throw for the request failing and call onError,
 * which finds the call settled: the bug would vanish, and the client wait for an answer that never
 * comes. Thrown again outside undici, it is an uncaught exception, as it was a promise rejection
 * nobody handled when the sink was a promise's reaction.
 */
function rethrowOutsideUndici(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** Maps transport failures to the catalogue: timeouts → upstream_timeout, the rest → upstream_unavailable. */
export function toTunnelError(error: unknown): TunnelError {
  if (error instanceof TunnelError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return new TunnelError('upstream_timeout', { cause: error });
  return new TunnelError('upstream_unavailable', { cause: error });
}
