// The request pipeline, in order: route → CORS → project by URL → client budget → encoding and size →
// envelope header → DSN allowlist → Sentry's limits and the project budget → processing (only with
// rules) → upstream headers → forward → answer. This is the only place errors become HTTP responses
// (sendError), and the only place a request is logged.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { type BodyLimits, type EnvelopeHead, parseContentEncoding, readEnvelopeHead } from './body.js';
import { envelopeEventId } from './envelope.js';
import type { ClientIpResolver } from './client-ip.js';
import type { Config } from '../config/schema.js';
import { ALLOWED_METHODS, type CorsPolicy } from './cors.js';
import { TunnelError, errorBody } from '../errors.js';
import type { Processor } from '../processing/processing.js';
import type { Project, ProjectRegistry } from './projects.js';
import type { RateLimiting } from '../limits/rate-limiting.js';
import type { SpoolStats } from '../spool/spool.js';
import { type Forward, isTransportFailure, toTunnelError } from '../upstream/upstream.js';

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
  /** The spool, when spool.dir is set: its depth is part of /readyz. */
  readonly spool?: { stats(): SpoolStats } | undefined;
  /** Counts every request when it ends (metrics); absent when metrics are off. */
  readonly observer?: RequestObserver;
  /** Serves the metrics exposition on the main port; absent when metrics are off or on their own port. */
  readonly metricsEndpoint?: MetricsEndpoint;
  /** Hands unexpected failures (bugs, not decisions or outages) to self-monitoring. */
  readonly reportError?: (error: unknown, record: RequestRecord) => void;
}

export interface RequestObserver {
  observe(record: RequestRecord): void;
}

export interface MetricsEndpoint {
  readonly path: string;
  readonly contentType: string;
  render(): Promise<string>;
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

export type Outcome = 'forwarded' | 'rejected' | 'rate_limited' | 'filtered' | 'spooled' | 'failed';

/** What one request did, logged as one line when it ends (and counted by metrics). */
export interface RequestRecord {
  reqId: string;
  method: string;
  path: string;
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
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly record: RequestRecord;
  /** CORS headers every answer on the tunnel path carries once the origin was allowed. */
  cors?: Readonly<Record<string, string>>;
}

/** Client request headers Sentry may see; everything else (Cookie, Authorization, spoofable IP headers) stays behind. */
const FORWARDED_REQUEST_HEADERS = ['user-agent', 'origin'] as const;
const JSON_CONTENT_TYPE = 'application/json';
const ENVELOPE_CONTENT_TYPE = 'application/x-sentry-envelope';

let requestCounter = 0;
const requestIdPrefix = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0');

/**
 * The request handler of the main port or, given `metricsOnly`, of the separate metrics port, which
 * serves that endpoint and nothing else.
 */
export function createRequestHandler(ctx: TunnelContext, metricsOnly?: MetricsEndpoint): (req: IncomingMessage, res: ServerResponse) => void {
  const tunnelPath = ctx.config.server.path;
  const namedPrefix = `${tunnelPath}/`;
  const metrics = metricsOnly ?? ctx.metricsEndpoint;
  const bodyLimits: BodyLimits = { ...ctx.config.limits, requestTimeoutMs: ctx.config.server.requestTimeoutMs };

  return (req, res) => {
    const started = performance.now();
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const record: RequestRecord = {
      reqId: `${requestIdPrefix}-${(++requestCounter).toString(36)}`,
      method: req.method ?? 'GET',
      path,
      status: 0,
      bytesIn: 0,
      durationMs: 0,
    };
    const exchange: Exchange = { req, res, record };
    ctx.lifecycle.enter();
    let handled: Promise<void>;
    // Probes and scrapes are not traffic: they are logged, but not counted by metrics.
    let traffic = metricsOnly === undefined;
    if (metrics && path === metrics.path) {
      traffic = false;
      handled = handleMetrics(ctx, exchange, metrics);
    } else if (metricsOnly) {
      handled = Promise.reject(new TunnelError('not_found'));
    } else if (path === tunnelPath || path === namedPrefix) {
      handled = handleTunnel(ctx, exchange, bodyLimits, undefined);
    } else if (path.startsWith(namedPrefix) && !path.includes('/', namedPrefix.length)) {
      handled = handleTunnel(ctx, exchange, bodyLimits, decodeName(path.slice(namedPrefix.length)));
    } else if (path === '/healthz' || path === '/readyz') {
      traffic = false;
      handled = handleHealth(ctx, exchange, path);
    } else {
      handled = Promise.reject(new TunnelError('not_found'));
    }
    handled
      .catch((error: unknown) => sendError(ctx, exchange, error))
      .finally(() => {
        record.durationMs = Math.round((performance.now() - started) * 100) / 100;
        if (record.status >= 500) ctx.logger.error(record, 'request');
        else ctx.logger.info(record, 'request');
        if (traffic) ctx.observer?.observe(record);
        ctx.lifecycle.leave();
      });
  };
}

async function handleTunnel(ctx: TunnelContext, exchange: Exchange, limits: BodyLimits, projectName: string | undefined): Promise<void> {
  const { req, record } = exchange;
  if (req.method === 'OPTIONS') {
    const preflight = ctx.cors.preflight(req);
    if (!preflight.allowed) throw new TunnelError('origin_not_allowed');
    return send(ctx, exchange, 204, { allow: ALLOWED_METHODS, ...preflight.headers });
  }
  if (req.method !== 'POST') throw new TunnelError('method_not_allowed', { headers: { allow: ALLOWED_METHODS } });

  const cors = ctx.cors.check(req.headers.origin);
  if (!cors.allowed) throw new TunnelError('origin_not_allowed');
  exchange.cors = cors.headers;

  let named: Project | undefined;
  if (projectName !== undefined) {
    named = ctx.projects.byName.get(projectName);
    if (!named) throw new TunnelError('unknown_project', { message: `No project named "${projectName}" is configured.` });
    record.project = named.name;
  }

  // Derived once: the rate limit, X-Forwarded-For and enrichment all use it.
  const clientIp = ctx.clientIp(req);
  await ctx.rateLimiting.checkClient(clientIp, record);

  const encoding = parseContentEncoding(req.headers['content-encoding']);
  const declaredLength = req.headers['content-length'];
  if (declaredLength !== undefined && Number(declaredLength) > limits.maxEnvelopeBytes) throw new TunnelError('envelope_too_large');

  const head = await readEnvelopeHead(req, encoding, limits, { whole: ctx.processor !== undefined });
  record.bytesIn = head.wireBytes();
  try {
    const project = resolveProject(ctx, head, named);
    record.project = project.name;
    await ctx.rateLimiting.checkProject(project, head, encoding, record);
    const headers = upstreamHeaders(ctx, req, clientIp, encoding !== 'identity');
    let body = head.body;
    if (ctx.processor && head.decoded) {
      const processed = processEnvelope(exchange, ctx.processor, clientIp, head.decoded);
      if (processed === 'filtered') {
        record.outcome = 'filtered';
        return send(ctx, exchange, 200, { 'content-type': JSON_CONTENT_TYPE, ...cors.headers }, filteredBody(head.header));
      }
      if (processed) {
        // The changed envelope goes out decoded: re-compressing costs more CPU than it saves on the
        // tunnel→Sentry hop (bench/processing.mjs measures both).
        body = processed;
        delete headers['content-encoding'];
        headers['content-length'] = String(processed.length);
      }
    }
    const reply = await ctx
      .forward({ project: project.name, target: project.target, header: head.header, headers, body })
      .catch((error: unknown) => {
        // A transport failure is an outage (502/504); anything else thrown by a Forward is a bug (500).
        throw head.failure() ?? (isTransportFailure(error) ? toTunnelError(error) : error);
      });
    record.bytesIn = head.wireBytes();
    if (reply.spooled) {
      record.outcome = 'spooled';
      record.cause = reply.spooled.cause;
      if (reply.spooled.upstreamStatus !== undefined) record.upstreamStatus = reply.spooled.upstreamStatus;
    } else {
      record.upstreamStatus = reply.status;
      record.outcome = 'forwarded';
    }
    send(ctx, exchange, reply.status, { ...reply.headers, ...cors.headers }, reply.body);
  } catch (error) {
    record.bytesIn = head.wireBytes();
    if (!Buffer.isBuffer(head.body)) (head.body as Readable).destroy();
    throw error;
  }
}

function resolveProject(ctx: TunnelContext, head: EnvelopeHead, named: Project | undefined): Project {
  const dsn = head.header.dsn;
  if (typeof dsn !== 'string' || dsn === '') throw new TunnelError('missing_dsn');
  const project = ctx.projects.resolve(dsn);
  if (project === null) throw new TunnelError('invalid_dsn');
  if (project === undefined) throw new TunnelError('dsn_not_allowed');
  if (named && project !== named) {
    throw new TunnelError('dsn_mismatch', { message: `The envelope DSN does not belong to project "${named.name}".` });
  }
  return project;
}

/**
 * Applies filters and enrichment to the decoded envelope: the new body when it changed, 'filtered'
 * when no item is left, undefined when the original bytes go on. Throws malformed_envelope.
 */
function processEnvelope(exchange: Exchange, processor: Processor, clientIp: string, decoded: Buffer): Buffer | 'filtered' | undefined {
  const { req, record } = exchange;
  const result = processor.process(decoded, { ip: () => clientIp, userAgent: req.headers['user-agent'] });
  if (result.dropped.length > 0) record.dropped = result.dropped.map(({ reason, type }) => ({ reason, type }));
  if (result.kind === 'emptied') return 'filtered';
  return result.kind === 'changed' ? result.body : undefined;
}

/** What Sentry answers an accepted envelope with, so the SDK neither retries nor notices the filter. */
function filteredBody(header: Readonly<Record<string, unknown>>): string {
  const id = envelopeEventId(header);
  return id === undefined ? '{}' : JSON.stringify({ id });
}

function upstreamHeaders(ctx: TunnelContext, req: IncomingMessage, clientIp: string, encoded: boolean): Record<string, string> {
  const incoming = req.headers;
  const headers: Record<string, string> = { 'content-type': incoming['content-type'] || ENVELOPE_CONTENT_TYPE };
  if (encoded) headers['content-encoding'] = incoming['content-encoding'] as string;
  if (incoming['content-length'] !== undefined) headers['content-length'] = incoming['content-length'];
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = incoming[name];
    if (value !== undefined) headers[name] = value;
  }
  for (const name in incoming) {
    // Client hints (Sec-CH-UA, Sec-CH-UA-Platform, …) help Sentry tell browsers apart.
    if (name.startsWith('sec-ch-ua')) {
      const value = incoming[name];
      if (typeof value === 'string') headers[name] = value;
    }
  }
  if (ctx.config.upstream.forwardClientIp) headers['x-forwarded-for'] = clientIp;
  return headers;
}

async function handleHealth(ctx: TunnelContext, exchange: Exchange, path: string): Promise<void> {
  const { req } = exchange;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new TunnelError('method_not_allowed', { message: 'Method not allowed; use GET.', headers: { allow: 'GET, HEAD' } });
  }
  if (path === '/readyz' && ctx.lifecycle.shuttingDown) throw new TunnelError('shutting_down');
  if (path === '/healthz') return send(ctx, exchange, 200, { 'content-type': JSON_CONTENT_TYPE }, '{"status":"ok"}');
  // Spooling is the tunnel doing its job, so readiness stays 200; the depth tells how far behind Sentry is.
  const spool = ctx.spool?.stats();
  // A full spool cannot keep the promise that nothing is lost: send traffic to another replica.
  if (spool?.full) throw new TunnelError('spool_full');
  const ready = spool ? { status: 'ready', spool: { envelopes: spool.envelopes, bytes: spool.bytes } } : { status: 'ready' };
  send(ctx, exchange, 200, { 'content-type': JSON_CONTENT_TYPE }, JSON.stringify(ready));
}

async function handleMetrics(ctx: TunnelContext, exchange: Exchange, endpoint: MetricsEndpoint): Promise<void> {
  const { req } = exchange;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new TunnelError('method_not_allowed', { message: 'Method not allowed; use GET.', headers: { allow: 'GET, HEAD' } });
  }
  const body = await endpoint.render();
  send(ctx, exchange, 200, { 'content-type': endpoint.contentType, 'cache-control': 'no-store' }, body);
}

function send(ctx: TunnelContext, exchange: Exchange, status: number, headers: Record<string, string>, body?: Buffer | string): void {
  const { req, res } = exchange;
  exchange.record.status = status;
  if (res.headersSent || res.destroyed) return;
  // An unread body would have to be drained before the next request on this connection: close it instead.
  if (ctx.lifecycle.shuttingDown || !req.complete) headers.connection = 'close';
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  res.end(body);
}

/** The one place a failure becomes an HTTP response: catalogue errors as they are, anything else as a logged 500. */
function sendError(ctx: TunnelContext, exchange: Exchange, caught: unknown): void {
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
  send(ctx, exchange, error.status, { 'content-type': JSON_CONTENT_TYPE, ...error.headers, ...exchange.cors }, errorBody(error));
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}

function decodeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
