// The request pipeline, in order: CORS → project by URL → client budget → encoding and size →
// envelope header → DSN allowlist → Sentry's limits and the project budget → processing (only with
// rules) → upstream headers → forward → answer. It knows neither node:http nor the Web Request: an
// adapter hands it an InboundRequest and writes the Answer. Errors become answers in one function
// (answerError), and every request is logged and counted in one place (finish).
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { TunnelError, errorBody, refusal } from '../errors.js';
import type { RateLimiting, Refusal } from '../limits/rate-limiting.js';
import type { Processor } from '../processing/processing.js';
import { type ReplySink, type Send, type UpstreamReply, isTransportFailure, toTunnelError } from '../upstream/upstream.js';
import { type BodyLimits, type ContentEncoding, type EnvelopeHead, type HeadListener, parseContentEncoding, readEnvelopeHead } from './body.js';
import type { ClientIpResolver } from './client-ip.js';
import { ALLOWED_METHODS, type CorsPolicy } from './cors.js';
import { envelopeEventId } from './envelope.js';
import { type Answer, type Exchange, type InboundRequest, type RequestRecord, first, header } from './exchange.js';
import type { Project, ProjectRegistry } from './projects.js';

export type { Answer, InboundRequest, Outcome, RequestRecord } from './exchange.js';

export interface TunnelContext {
  readonly config: Config;
  readonly projects: ProjectRegistry;
  readonly cors: CorsPolicy;
  readonly clientIp: ClientIpResolver;
  /** The way to Sentry; the request's TunnelCall is told how it ended. */
  readonly send: Send;
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

export const JSON_CONTENT_TYPE = 'application/json';
const ENVELOPE_CONTENT_TYPE = 'application/x-sentry-envelope';

let requestCounter = 0;
const requestIdPrefix = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0');

export class Pipeline {
  readonly ctx: TunnelContext;
  readonly limits: BodyLimits;
  #warnedNoAddress = false;

  constructor(ctx: TunnelContext) {
    this.ctx = ctx;
    this.limits = { ...ctx.config.limits, requestTimeoutMs: ctx.config.server.requestTimeoutMs };
  }

  /** A request on the tunnel path: a POST envelope or an OPTIONS preflight. `project` is a name from the URL, `route` the configured path it used. */
  tunnel(inbound: InboundRequest, project?: string, route?: string): Promise<Answer> {
    return new Promise((resolve) => this.handle(inbound, project, route, resolve));
  }

  /**
   * tunnel(), the answer handed to `respond` (once, always) instead of a promise: what the daemon and
   * the middleware call. A forwarded envelope then takes no promise (without a spool or a wrapForward).
   */
  handle(inbound: InboundRequest, project: string | undefined, route: string | undefined, respond: (answer: Answer) => void): void {
    new TunnelCall(this, inbound, project, route, respond).start();
  }

  /**
   * Runs `handler` for one request and always resolves to an answer: refusals and failures become
   * catalogue answers, then the request is logged once and, when it is `traffic`, counted.
   */
  async run(inbound: InboundRequest, handler: Handler, traffic: boolean): Promise<Answer> {
    const { ctx } = this;
    const exchange: Exchange = { inbound, record: newRecord(inbound), started: performance.now() };
    ctx.lifecycle.enter();
    let answer: Answer;
    try {
      answer = await handler(exchange);
    } catch (error) {
      answer = answerError(ctx, exchange, error);
    }
    finish(ctx, exchange, answer, traffic);
    return answer;
  }

  /** Once per tunnel: without an address the per-client budget, X-Forwarded-For and enrich.clientIp cannot apply. */
  warnNoAddress(): void {
    if (this.#warnedNoAddress) return;
    this.#warnedNoAddress = true;
    this.ctx.logger.warn(
      'request without a client address: the per-client rate limit, X-Forwarded-For to Sentry and enrich.clientIp are skipped for such requests; ' +
        'pass { clientAddress } to tunnel.fetch(), or set server.trustProxy when a proxy you trust sets X-Forwarded-For',
    );
  }
}

function newRecord(inbound: InboundRequest): RequestRecord {
  return { reqId: `${requestIdPrefix}-${(++requestCounter).toString(36)}`, method: inbound.method, path: inbound.path, status: 0, bytesIn: 0, durationMs: 0 };
}

/** Every request ends here: its record completed, logged once and, when it is `traffic`, counted. */
function finish(ctx: TunnelContext, exchange: Exchange, answer: Answer, traffic: boolean): void {
  const { record } = exchange;
  record.status = answer.status;
  record.durationMs = Math.round((performance.now() - exchange.started) * 100) / 100;
  ctx.requestLog.write(record, traffic);
  if (traffic) ctx.observer?.observe(record);
  ctx.lifecycle.leave();
}

/**
 * One request on the tunnel path, its stages as methods, each continuing the next: the request
 * (#start), the client's budget (#afterClient), the envelope's head (onHead), the project's limits
 * (#afterProject), Sentry's reply (#onReply). A step returns the answer when it has one, or undefined
 * when a later step will give it; whatever a step throws becomes the answer (answerError).
 * Callbacks, not an async function: awaiting the client budget, the body and the forward cost a
 * forward seven promises and their jobs (bench:ab); the call is also the sink of Sentry's reply (ReplySink),
 * so the forward chain adds none either.
 */
class TunnelCall implements Exchange, HeadListener, ReplySink {
  readonly record: RequestRecord;
  readonly started: number;
  cors?: Readonly<Record<string, string>>;
  readonly #pipeline: Pipeline;
  readonly #ctx: TunnelContext;
  readonly #projectName: string | undefined;
  readonly #respond: (answer: Answer) => void;
  #named: Project | undefined;
  #clientIp: string | undefined;
  #encoding: ContentEncoding = 'identity';
  #head: EnvelopeHead | undefined;
  #answered = false;

  constructor(
    pipeline: Pipeline,
    readonly inbound: InboundRequest,
    projectName: string | undefined,
    route: string | undefined,
    respond: (answer: Answer) => void,
  ) {
    this.#pipeline = pipeline;
    this.#ctx = pipeline.ctx;
    this.#projectName = projectName;
    this.#respond = respond;
    this.started = performance.now();
    this.record = newRecord(inbound);
    if (route !== undefined) this.record.route = route;
  }

  start(): void {
    this.#ctx.lifecycle.enter();
    let answer: Answer | undefined;
    try {
      answer = this.#start();
    } catch (error) {
      answer = answerError(this.#ctx, this, error);
    }
    if (answer !== undefined) this.#answer(answer);
  }

  /** The head is known: the project it names, then its limits. */
  onHead(head: EnvelopeHead): void {
    this.#head = head;
    this.record.bytesIn = head.wireBytes();
    let answer: Answer | undefined;
    try {
      const project = resolveProject(this.#ctx, head, this.#named);
      if (project instanceof TunnelError) answer = this.#refuseRead(project);
      else {
        this.record.project = project.name;
        const refused = this.#ctx.rateLimiting.checkProject(project, head, this.#encoding, this.record);
        if (refused instanceof Promise) {
          refused.then(
            (later) => this.#continue(() => this.#afterProject(project, later)),
            (error: unknown) => this.#answer(this.#refuseRead(error)),
          );
        } else answer = this.#afterProject(project, refused);
      }
    } catch (error) {
      answer = this.#refuseRead(error);
    }
    if (answer !== undefined) this.#answer(answer);
  }

  onHeadFailed(error: TunnelError): void {
    this.#answer(answerError(this.#ctx, this, error));
  }

  #start(): Answer | undefined {
    const ctx = this.#ctx;
    const { inbound, record } = this;
    const { headers } = inbound;
    if (inbound.method === 'OPTIONS') {
      const preflight = ctx.cors.preflight(headers);
      if (!preflight.allowed) throw refusal('origin_not_allowed');
      return { status: 204, headers: Object.assign({ allow: ALLOWED_METHODS }, preflight.headers), body: undefined };
    }
    if (inbound.method !== 'POST') throw new TunnelError('method_not_allowed', { headers: { allow: ALLOWED_METHODS } });

    // Refusals on this path are returned, not thrown: under a flood, unwinding the stack is a large part of a refusal's cost.
    const cors = ctx.cors.check(first(headers.origin));
    if (!cors.allowed) return answerError(ctx, this, refusal('origin_not_allowed'));
    this.cors = cors.headers;

    if (this.#projectName !== undefined) {
      this.#named = ctx.projects.byName.get(this.#projectName);
      if (!this.#named) throw new TunnelError('unknown_project', { message: `No project named "${this.#projectName}" is configured.` });
      record.project = this.#named.name;
    }
    if (inbound.bodyAlreadyRead !== undefined) throw new TunnelError('body_already_read', { message: inbound.bodyAlreadyRead });

    // Derived once: the rate limit, X-Forwarded-For and enrichment all use it.
    const clientIp = ctx.clientIp(headers, inbound.peerAddress);
    this.#clientIp = clientIp;
    if (clientIp === undefined) {
      this.#pipeline.warnNoAddress();
      return this.#afterClient(undefined);
    }
    const refused = ctx.rateLimiting.checkClient(clientIp, record);
    if (!(refused instanceof Promise)) return this.#afterClient(refused);
    refused.then(
      (later) => this.#continue(() => this.#afterClient(later)),
      (error: unknown) => this.#answer(answerError(ctx, this, error)),
    );
    return undefined;
  }

  /** Past the client's budget: the body's encoding and declared size, then its head is read. */
  #afterClient(refused: Refusal): Answer | undefined {
    if (refused) return answerError(this.#ctx, this, refused);
    const { headers } = this.inbound;
    this.#encoding = parseContentEncoding(first(headers['content-encoding']));
    const declaredLength = first(headers['content-length']);
    const limits = this.#pipeline.limits;
    if (declaredLength !== undefined && Number(declaredLength) > limits.maxEnvelopeBytes) throw new TunnelError('envelope_too_large');
    const options = { whole: this.#ctx.processor !== undefined, record: this.record, since: this.started, closeReportsAbort: this.inbound.closeReportsAbort };
    readEnvelopeHead(this.inbound.body, this.#encoding, limits, options, this);
    return undefined;
  }

  /** Past every limit: processing, then the forward. */
  #afterProject(project: Project, refused: Refusal): Answer | undefined {
    const ctx = this.#ctx;
    const head = this.#head as EnvelopeHead;
    if (refused) return this.#refuseRead(refused);
    const outgoing = upstreamHeaders(ctx, this.inbound, this.#clientIp, this.#encoding !== 'identity');
    let body = head.body;
    if (ctx.processor && head.decoded) {
      const processed = processEnvelope(this, ctx.processor, this.#clientIp, head.decoded);
      if (processed === 'filtered') {
        this.record.outcome = 'filtered';
        return { status: 200, headers: Object.assign({ 'content-type': JSON_CONTENT_TYPE }, this.cors), body: filteredBody(head.header) };
      }
      if (processed) {
        // The changed envelope goes out decoded: re-compressing costs more CPU than it saves on the
        // tunnel→Sentry hop (bench/processing.mjs measures both).
        body = processed;
        delete outgoing['content-encoding'];
        outgoing['content-length'] = String(processed.length);
      }
    }
    ctx.send({ project: project.name, target: project.target, header: head.header, headers: outgoing, body }, this);
    return undefined;
  }

  /** Sentry's reply (ReplySink): the answer. */
  replied(reply: UpstreamReply): void {
    let answer: Answer;
    try {
      answer = this.#onReply(reply);
    } catch (error) {
      answer = this.#refuseRead(error);
    }
    this.#answer(answer);
  }

  #onReply(reply: UpstreamReply): Answer {
    const { record } = this;
    record.bytesIn = (this.#head as EnvelopeHead).wireBytes();
    if (reply.spooled) {
      record.outcome = 'spooled';
      record.cause = reply.spooled.cause;
      if (reply.spooled.upstreamStatus !== undefined) record.upstreamStatus = reply.spooled.upstreamStatus;
    } else {
      record.upstreamStatus = reply.status;
      record.outcome = 'forwarded';
    }
    // Object.assign, not a spread: `{ ...a, ...b }` of these header objects cost ~10 % of a forward's CPU (bench:ab).
    return { status: reply.status, headers: Object.assign({}, reply.headers, this.cors), body: reply.body };
  }

  /** No reply (ReplySink): a transport failure is an outage (502/504); anything else a step fails with is a bug (500). */
  failed(error: unknown): void {
    const head = this.#head as EnvelopeHead;
    this.#answer(this.#refuseRead(head.failure() ?? (isTransportFailure(error) ? toTunnelError(error) : error)));
  }

  /** The answer to a request refused (or failed) once its body was being read: what arrived is recorded, a stream is let go. */
  #refuseRead(error: unknown): Answer {
    const head = this.#head;
    if (head === undefined) return answerError(this.#ctx, this, error);
    this.record.bytesIn = head.wireBytes();
    if (!Buffer.isBuffer(head.body)) (head.body as Readable).destroy();
    return answerError(this.#ctx, this, error);
  }

  /** Runs a step that a promise continued (Redis deciding a budget, Sentry's limits being judged). */
  #continue(step: () => Answer | undefined): void {
    let answer: Answer | undefined;
    try {
      answer = step();
    } catch (error) {
      answer = this.#refuseRead(error);
    }
    if (answer !== undefined) this.#answer(answer);
  }

  #answer(answer: Answer): void {
    // Once: were `respond` to throw inside a step, the step's catch would otherwise answer again.
    if (this.#answered) return;
    this.#answered = true;
    finish(this.#ctx, this, answer, true);
    this.#respond(answer);
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

/**
 * The request headers Sentry sees: the body's type, encoding and length, the browser's User-Agent,
 * Origin and the client hints Relay reads, the client's address; everything else (Cookie, Authorization, spoofable IP
 * headers) stays behind.
 */
function upstreamHeaders(ctx: TunnelContext, inbound: InboundRequest, clientIp: string | undefined, encoded: boolean): Record<string, string> {
  const incoming = inbound.headers;
  const headers: Record<string, string> = { 'content-type': first(incoming['content-type']) || ENVELOPE_CONTENT_TYPE };
  if (encoded) headers['content-encoding'] = first(incoming['content-encoding']) as string;
  const length = first(incoming['content-length']);
  if (length !== undefined) headers['content-length'] = length;
  // Named one by one, not looped over: a property read and write with a constant name is an inline
  // cache hit, one with a variable name a megamorphic lookup (bench:instructions).
  const userAgent = first(incoming['user-agent']);
  if (userAgent !== undefined) headers['user-agent'] = userAgent;
  const origin = first(incoming.origin);
  if (origin !== undefined) headers.origin = origin;
  // The client hints Relay reads to tell browsers apart (relay-event-normalization's ClientHints),
  // named, not found by looping over every header with a variable name (bench:ab).
  const ua = first(incoming['sec-ch-ua']);
  if (ua !== undefined) headers['sec-ch-ua'] = ua;
  const platform = first(incoming['sec-ch-ua-platform']);
  if (platform !== undefined) headers['sec-ch-ua-platform'] = platform;
  const platformVersion = first(incoming['sec-ch-ua-platform-version']);
  if (platformVersion !== undefined) headers['sec-ch-ua-platform-version'] = platformVersion;
  const model = first(incoming['sec-ch-ua-model']);
  if (model !== undefined) headers['sec-ch-ua-model'] = model;
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
