// The request pipeline, in order: CORS → project by URL → client budget → encoding and size →
// envelope header → DSN allowlist → Sentry's limits and the project budget → processing (only with
// rules) → upstream headers → forward → answer. It knows neither node:http nor the Web Request: an
// adapter hands it an InboundRequest and writes the Answer. Errors become answers in one function
// (answerError), and every request is logged and counted in one place (Pipeline.run).
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { TunnelError, errorBody, refusal } from '../errors.js';
import type { RateLimiting } from '../limits/rate-limiting.js';
import type { Processor } from '../processing/processing.js';
import { type Forward, type UpstreamReply, isTransportFailure, toTunnelError } from '../upstream/upstream.js';
import { type BodyLimits, type EnvelopeHead, parseContentEncoding, readEnvelopeHead } from './body.js';
import type { ClientIpResolver } from './client-ip.js';
import { ALLOWED_METHODS, type CorsPolicy } from './cors.js';
import { envelopeEventId } from './envelope.js';
import { type Answer, type Exchange, type InboundRequest, type RequestRecord, header, withRoute } from './exchange.js';
import type { Project, ProjectRegistry } from './projects.js';

export type { Answer, InboundRequest, Outcome, RequestRecord } from './exchange.js';

export interface TunnelContext {
  readonly config: Config;
  readonly projects: ProjectRegistry;
  readonly cors: CorsPolicy;
  readonly clientIp: ClientIpResolver;
  readonly forward: Forward;
  readonly rateLimiting: RateLimiting;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
  /** The filters and enrichment, when any rule is configured (then bodies are read whole). */
  readonly processor?: Processor | undefined;
  /** Writes what log.requests asks for, once per request. */
  readonly requestLog: { write(record: RequestRecord, traffic: boolean): void };
  /** Counts every request when it ends (metrics); absent when metrics are off. */
  readonly observer?: RequestObserver | undefined;
  /** Hands unexpected failures (bugs, not decisions or outages) to self-monitoring. */
  readonly reportError?: ((error: unknown, record: RequestRecord) => void) | undefined;
}

export interface RequestObserver {
  observe(record: RequestRecord): void;
}

/** Whether the tunnel takes traffic, and how many requests are being handled right now. */
export class Lifecycle {
  shuttingDown = false;
  inFlight = 0;
  #onIdle: (() => void) | undefined;

  enter(): void {
    this.inFlight++;
  }

  leave(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.#onIdle) this.#onIdle();
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onIdle = resolve;
    });
  }
}

/** A stage that answers a request; it throws TunnelErrors for refusals. */
export type Handler = (exchange: Exchange) => Promise<Answer>;

/** Client request headers Sentry may see; everything else (Cookie, Authorization, spoofable IP headers) stays behind. */
const FORWARDED_REQUEST_HEADERS = ['user-agent', 'origin'] as const;
export const JSON_CONTENT_TYPE = 'application/json';
const ENVELOPE_CONTENT_TYPE = 'application/x-sentry-envelope';

let requestCounter = 0;
const requestIdPrefix = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0');

export class Pipeline {
  readonly ctx: TunnelContext;
  readonly #limits: BodyLimits;
  #warnedNoAddress = false;

  constructor(ctx: TunnelContext) {
    this.ctx = ctx;
    this.#limits = { ...ctx.config.limits, requestTimeoutMs: ctx.config.server.requestTimeoutMs };
  }

  /** A request on the tunnel path: a POST envelope or an OPTIONS preflight. `project` is a name from the URL, `route` the configured path it used. */
  tunnel(inbound: InboundRequest, project?: string, route?: string): Promise<Answer> {
    return this.run(inbound, (exchange) => this.#tunnel(withRoute(exchange, route), project), true);
  }

  /**
   * Runs `handler` for one request and always resolves to an answer: refusals and failures become
   * catalogue answers, then the request is logged once and, when it is `traffic`, counted.
   */
  async run(inbound: InboundRequest, handler: Handler, traffic: boolean): Promise<Answer> {
    const { ctx } = this;
    const started = performance.now();
    const record: RequestRecord = {
      reqId: `${requestIdPrefix}-${(++requestCounter).toString(36)}`,
      method: inbound.method,
      path: inbound.path,
      status: 0,
      bytesIn: 0,
      durationMs: 0,
    };
    const exchange: Exchange = { inbound, record, started };
    ctx.lifecycle.enter();
    let answer: Answer;
    try {
      answer = await handler(exchange);
    } catch (error) {
      answer = answerError(ctx, exchange, error);
    }
    record.status = answer.status;
    record.durationMs = Math.round((performance.now() - started) * 100) / 100;
    ctx.requestLog.write(record, traffic);
    if (traffic) ctx.observer?.observe(record);
    ctx.lifecycle.leave();
    return answer;
  }

  async #tunnel(exchange: Exchange, projectName: string | undefined): Promise<Answer> {
    const { ctx } = this;
    const { inbound, record } = exchange;
    const { headers } = inbound;
    if (inbound.method === 'OPTIONS') {
      const preflight = ctx.cors.preflight(headers);
      if (!preflight.allowed) throw refusal('origin_not_allowed');
      return { status: 204, headers: Object.assign({ allow: ALLOWED_METHODS }, preflight.headers), body: undefined };
    }
    if (inbound.method !== 'POST') throw new TunnelError('method_not_allowed', { headers: { allow: ALLOWED_METHODS } });

    // Refusals on this path are returned, not thrown: under a flood, unwinding the stack is a large part of a refusal's cost.
    const cors = ctx.cors.check(header(headers, 'origin'));
    if (!cors.allowed) return answerError(ctx, exchange, refusal('origin_not_allowed'));
    exchange.cors = cors.headers;

    let named: Project | undefined;
    if (projectName !== undefined) {
      named = ctx.projects.byName.get(projectName);
      if (!named) throw new TunnelError('unknown_project', { message: `No project named "${projectName}" is configured.` });
      record.project = named.name;
    }
    if (inbound.bodyAlreadyRead !== undefined) throw new TunnelError('body_already_read', { message: inbound.bodyAlreadyRead });

    // Derived once: the rate limit, X-Forwarded-For and enrichment all use it.
    const clientIp = ctx.clientIp(headers, inbound.peerAddress);
    if (clientIp === undefined) this.#warnNoAddress();
    else {
      let refused = ctx.rateLimiting.checkClient(clientIp, record);
      if (refused instanceof Promise) refused = await refused;
      if (refused) return answerError(ctx, exchange, refused);
    }

    const encoding = parseContentEncoding(header(headers, 'content-encoding'));
    const declaredLength = header(headers, 'content-length');
    if (declaredLength !== undefined && Number(declaredLength) > this.#limits.maxEnvelopeBytes) throw new TunnelError('envelope_too_large');

    const head = await readEnvelopeHead(inbound.body, encoding, this.#limits, { whole: ctx.processor !== undefined, record, since: exchange.started });
    record.bytesIn = head.wireBytes();
    try {
      const project = resolveProject(ctx, head, named);
      if (project instanceof TunnelError) return refuseRead(ctx, exchange, head, project);
      record.project = project.name;
      let refused = ctx.rateLimiting.checkProject(project, head, encoding, record);
      if (refused instanceof Promise) refused = await refused;
      if (refused) return refuseRead(ctx, exchange, head, refused);
      const outgoing = upstreamHeaders(ctx, inbound, clientIp, encoding !== 'identity');
      let body = head.body;
      if (ctx.processor && head.decoded) {
        const processed = processEnvelope(exchange, ctx.processor, clientIp, head.decoded);
        if (processed === 'filtered') {
          record.outcome = 'filtered';
          return { status: 200, headers: Object.assign({ 'content-type': JSON_CONTENT_TYPE }, cors.headers), body: filteredBody(head.header) };
        }
        if (processed) {
          // The changed envelope goes out decoded: re-compressing costs more CPU than it saves on the
          // tunnel→Sentry hop (bench/processing.mjs measures both).
          body = processed;
          delete outgoing['content-encoding'];
          outgoing['content-length'] = String(processed.length);
        }
      }
      let reply: UpstreamReply;
      try {
        reply = await ctx.forward({ project: project.name, target: project.target, header: head.header, headers: outgoing, body });
      } catch (error) {
        // A transport failure is an outage (502/504); anything else thrown by a Forward is a bug (500).
        throw head.failure() ?? (isTransportFailure(error) ? toTunnelError(error) : error);
      }
      record.bytesIn = head.wireBytes();
      if (reply.spooled) {
        record.outcome = 'spooled';
        record.cause = reply.spooled.cause;
        if (reply.spooled.upstreamStatus !== undefined) record.upstreamStatus = reply.spooled.upstreamStatus;
      } else {
        record.upstreamStatus = reply.status;
        record.outcome = 'forwarded';
      }
      // Object.assign, not a spread: `{ ...a, ...b }` of these header objects cost ~10 % of a forward's CPU (bench:ab).
      return { status: reply.status, headers: Object.assign({}, reply.headers, cors.headers), body: reply.body };
    } catch (error) {
      return refuseRead(ctx, exchange, head, error);
    }
  }

  /** Once per tunnel: without an address the per-client budget, X-Forwarded-For and enrich.clientIp cannot apply. */
  #warnNoAddress(): void {
    if (this.#warnedNoAddress) return;
    this.#warnedNoAddress = true;
    this.ctx.logger.warn(
      'request without a client address: the per-client rate limit, X-Forwarded-For to Sentry and enrich.clientIp are skipped for such requests; ' +
        'pass { clientAddress } to tunnel.fetch(), or set server.trustProxy when a proxy you trust sets X-Forwarded-For',
    );
  }
}

/** The configured project the envelope's DSN names, or the refusal. */
function resolveProject(ctx: TunnelContext, head: EnvelopeHead, named: Project | undefined): Project | TunnelError {
  const dsn = head.header.dsn;
  if (typeof dsn !== 'string' || dsn === '') return refusal('missing_dsn');
  const project = ctx.projects.resolve(dsn);
  if (project === null) return refusal('invalid_dsn');
  if (project === undefined) return refusal('dsn_not_allowed');
  if (named && project !== named) return new TunnelError('dsn_mismatch', { message: `The envelope DSN does not belong to project "${named.name}".` });
  return project;
}

/** The answer to a request refused (or failed) once its body was being read: what arrived is recorded, a stream is let go. */
function refuseRead(ctx: TunnelContext, exchange: Exchange, head: EnvelopeHead, error: unknown): Answer {
  exchange.record.bytesIn = head.wireBytes();
  if (!Buffer.isBuffer(head.body)) (head.body as Readable).destroy();
  return answerError(ctx, exchange, error);
}

/**
 * Applies filters and enrichment to the decoded envelope: the new body when it changed, 'filtered'
 * when no item is left, undefined when the original bytes go on. Throws malformed_envelope.
 */
function processEnvelope(exchange: Exchange, processor: Processor, clientIp: string | undefined, decoded: Buffer): Buffer | 'filtered' | undefined {
  const { inbound, record } = exchange;
  const result = processor.process(decoded, { ip: () => clientIp, userAgent: header(inbound.headers, 'user-agent') });
  if (result.dropped.length > 0) record.dropped = result.dropped.map(({ reason, type }) => ({ reason, type }));
  if (result.kind === 'emptied') return 'filtered';
  return result.kind === 'changed' ? result.body : undefined;
}

/** What Sentry answers an accepted envelope with, so the SDK neither retries nor notices the filter. */
function filteredBody(envelopeHeader: Readonly<Record<string, unknown>>): string {
  const id = envelopeEventId(envelopeHeader);
  return id === undefined ? '{}' : JSON.stringify({ id });
}

function upstreamHeaders(ctx: TunnelContext, inbound: InboundRequest, clientIp: string | undefined, encoded: boolean): Record<string, string> {
  const incoming = inbound.headers;
  const headers: Record<string, string> = { 'content-type': header(incoming, 'content-type') || ENVELOPE_CONTENT_TYPE };
  if (encoded) headers['content-encoding'] = header(incoming, 'content-encoding') as string;
  const length = header(incoming, 'content-length');
  if (length !== undefined) headers['content-length'] = length;
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = header(incoming, name);
    if (value !== undefined) headers[name] = value;
  }
  for (const name in incoming) {
    // Client hints (Sec-CH-UA, Sec-CH-UA-Platform, …) help Sentry tell browsers apart.
    if (name.startsWith('sec-ch-ua')) {
      const value = incoming[name];
      if (typeof value === 'string') headers[name] = value;
    }
  }
  if (ctx.config.upstream.forwardClientIp && clientIp !== undefined) headers['x-forwarded-for'] = clientIp;
  return headers;
}

/** The one place a failure becomes an answer: catalogue errors as they are, anything else as a logged 500. */
export function answerError(ctx: TunnelContext, exchange: Exchange, caught: unknown): Answer {
  const { record } = exchange;
  let error: TunnelError;
  if (caught instanceof TunnelError) error = caught;
  else {
    ctx.logger.error({ reqId: record.reqId, err: caught }, 'unexpected error while handling a request');
    error = new TunnelError('internal_error', { cause: caught });
  }
  if (error.code === 'internal_error') ctx.reportError?.(error.cause ?? error, record);
  record.code = error.code;
  if (error.code === 'overloaded') {
    record.outcome ??= 'rate_limited';
    record.rateLimit ??= { reason: 'overloaded' };
  }
  record.outcome ??= error.status >= 500 ? 'failed' : 'rejected';
  if (error.cause !== undefined && error.status >= 500) record.cause = describeCause(error.cause);
  return { status: error.status, headers: Object.assign({ 'content-type': JSON_CONTENT_TYPE }, error.headers, exchange.cors), body: errorBody(error) };
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}
