// createTunnel(config): validates and freezes the configuration, builds the Forward chain (upstream,
// metrics, limits, spool) and the pipeline on first use, and hands out `fetch`, `middleware`, `metrics`
// and `close`. The daemon (src/daemon) is this plus its own listener, health endpoints and signals.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { type FetchInfo, fetchInbound, toResponse } from './adapters/fetch.js';
import { nodeInbound, writeAnswer } from './adapters/node.js';
import type { Config, ConfigInput } from './config/schema.js';
import { isValidatedConfig, validateConfig } from './config/validate.js';
import { createClientIpResolver } from './core/client-ip.js';
import { CorsPolicy } from './core/cors.js';
import type { Answer } from './core/exchange.js';
import { Lifecycle, Pipeline } from './core/pipeline.js';
import { ProjectRegistry } from './core/projects.js';
import { warnOnUntrustedProxyHeaders } from './core/proxy-headers.js';
import { type Route, canonicalPath, createRouter, decodeName } from './core/routes.js';
import { pathOf } from './core/tunnel-path.js';
import { TunnelError, errorBody } from './errors.js';
import { RateLimiting } from './limits/rate-limiting.js';
import { type Logger, createLogger } from './observability/logger.js';
import { createRequestLog } from './observability/request-log.js';
import { TunnelMetrics } from './observability/metrics.js';
import { SelfMonitor } from './observability/self-monitoring.js';
import { Processor } from './processing/processing.js';
import { type Spooling, startSpooling } from './spool/spooling.js';
import { untraced } from './upstream/untraced.js';
import { type Forward, Upstream, forwardOf, sendOf } from './upstream/upstream.js';

export type { FetchInfo } from './adapters/fetch.js';

/** How long closing waits for self-monitoring reports still on their way. */
const SELF_MONITORING_FLUSH_MS = 2_000;
/** After the shutdown timeout, how long aborted forwards get to write themselves to the spool. */
const SPOOL_GRACE_MS = 2_000;

export interface TunnelOptions {
  /** Where the tunnel logs (pino); by default JSON lines on stdout at log.level. */
  readonly logger?: Logger;
  /** Wraps the forwarder (rate limits, spooling, …); the innermost step is the undici upstream. */
  readonly wrapForward?: (forward: Forward) => Forward;
}

export type NextFunction = (error?: unknown) => void;

export interface Tunnel {
  /** The validated, frozen configuration (undefined until first use when a function was given). */
  readonly config: Config;
  /** A fetch handler: `export const POST = tunnel.fetch`. Every request handed to it is a tunnel request. */
  readonly fetch: (request: Request, info?: FetchInfo) => Promise<Response>;
  /** A node:http / Connect / Express handler; see the README for which requests it takes. */
  readonly middleware: (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;
  /** Opens pools, Redis and the spool now instead of on the first request; rejects with what failed. */
  ready(): Promise<void>;
  /** The tunnel's own metrics in Prometheus' text format ("" when metrics.enabled is false). */
  metrics(): Promise<string>;
  /** Lets requests in flight finish (up to server.shutdownTimeoutMs), then releases everything. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What the daemon needs beyond the public surface. */
export interface TunnelParts {
  readonly pipeline: Pipeline;
  readonly lifecycle: Lifecycle;
  readonly metrics: TunnelMetrics | undefined;
  readonly spooling: Spooling | undefined;
  /** Waits until no request is in flight, spooling those still forwarding after `ms`; true when all finished in time. */
  drain(ms: number): Promise<boolean>;
  /** Closes what the tunnel opened; `graceful` lets upstream connections finish. */
  release(graceful: boolean): Promise<void>;
}

export const tunnelParts = Symbol('sentry-tunnel parts');

export type TunnelConfig = ConfigInput | Config | (() => ConfigInput);

/**
 * A tunnel for `config`, validated now exactly as a configuration file is (a ConfigError lists every
 * problem). Nothing opens until first use or `ready()`. Given a function, the configuration is read
 * and validated on first use instead: for builds that evaluate the module without the runtime's
 * environment (next build, vite build).
 */
export function createTunnel(config: TunnelConfig, options: TunnelOptions = {}): Tunnel & { readonly [tunnelParts]: () => Promise<TunnelParts> } {
  let validated = typeof config === 'function' ? undefined : validate(config);
  const configOf = () => (validated ??= validate((config as () => ConfigInput)()));
  let opened: Promise<TunnelParts> | undefined;
  let parts: TunnelParts | undefined;
  let closed: Promise<void> | undefined;
  let logger: Logger | undefined;
  let route: ((path: string) => Route | undefined) | undefined;

  const open = (): Promise<TunnelParts> => {
    if (closed) return Promise.reject(new TunnelError('shutting_down'));
    opened ??= Promise.resolve()
      .then(() => {
        const current = configOf();
        logger ??= options.logger ?? createLogger(current.log);
        return openTunnel(current, { ...options, logger });
      })
      .then(
        (built) => (parts = built),
        (error: unknown) => {
          logger?.error({ err: error }, 'the tunnel could not open; every request is answered 500 until it is created again');
          throw error;
        },
      );
    return opened;
  };

  const answer = (build: (p: TunnelParts) => Promise<Answer>): Promise<Answer> => {
    if (closed) return Promise.resolve(refusalAnswer(new TunnelError('shutting_down')));
    if (parts) return build(parts);
    return open().then(build, (error: unknown) => refusalAnswer(error));
  };

  const fetch = (request: Request, info?: FetchInfo): Promise<Response> =>
    answer((p) => p.pipeline.tunnel(fetchInbound(request, info), info?.project)).then(toResponse);

  const middleware = (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void => {
    const mounted = req as IncomingMessage & { baseUrl?: string; route?: unknown };
    const path = pathOf(req.url);
    let project: string | undefined;
    let tunnelPath: string | undefined;
    // Express/Connect route or mount: the framework routed it here, so it is a tunnel request; a path
    // left after a mount (app.use('/tunnel', …) sees "/web") names a project.
    if (mounted.route !== undefined || (mounted.baseUrl !== undefined && mounted.baseUrl !== '')) {
      project = path === '/' || path === '' || mounted.route !== undefined ? undefined : decodeName(path.slice(1));
    } else {
      try {
        route ??= createRouter(configOf().server.path);
      } catch (error) {
        // A configuration given as a function is first read here: answer as a failed open does.
        logger ??= options.logger ?? createLogger({ level: 'info', format: 'json', requests: 'summary', summaryIntervalMs: 60_000 });
        logger.error({ err: error }, 'the tunnel configuration is invalid; every request is answered 500');
        void writeAnswer(req, res, refusalAnswer(error), false);
        return;
      }
      const match = route(path);
      if (!match) {
        if (next) return next();
        const notFound = new TunnelError('not_found', { message: `Nothing is served at ${path}; this tunnel takes POST ${canonicalPath(configOf().server.path)} (server.path).` });
        void writeAnswer(req, res, refusalAnswer(notFound), false);
        return;
      }
      ({ project, tunnelPath } = match);
    }
    const respond = (result: Answer) => void writeAnswer(req, res, result, parts?.lifecycle.shuttingDown === true);
    // Open: no promise per request (Pipeline.handle).
    if (parts && !closed) return parts.pipeline.handle(nodeInbound(req, path), project, tunnelPath, respond);
    answer((p) => p.pipeline.tunnel(nodeInbound(req, path), project, tunnelPath)).then(respond, (error: unknown) => (next ? next(error) : res.destroy(error as Error)));
  };

  const close = (): Promise<void> => {
    closed ??= (async () => {
      if (!opened) return;
      const built = await opened.catch(() => undefined);
      if (!built) return;
      const finished = await built.drain(configOf().server.shutdownTimeoutMs);
      await built.release(finished);
    })();
    return closed;
  };

  return {
    get config() {
      return configOf();
    },
    fetch,
    middleware,
    ready: () => open().then(() => undefined),
    metrics: async () => (await open()).metrics?.renderOwn() ?? '',
    close,
    [Symbol.asyncDispose]: close,
    [tunnelParts]: open,
  };
}

/** Embedded, metrics are opt-in: an app decides what it exposes. The daemon passes a validated config. */
function validate(input: ConfigInput | Config): Config {
  if (isValidatedConfig(input)) return input;
  const metrics = (input as { metrics?: Record<string, unknown> }).metrics;
  return validateConfig({ ...input, metrics: { enabled: false, ...metrics } });
}

/**
 * An answer given outside the pipeline: a path the middleware does not take (404), or the tunnel unable
 * to serve because it could not open (500, the log says why) or is closed (503).
 */
function refusalAnswer(error: unknown): Answer {
  const refusal = error instanceof TunnelError ? error : new TunnelError('internal_error', { cause: error });
  return { status: refusal.status, headers: { 'content-type': 'application/json' }, body: errorBody(refusal) };
}

/** Builds everything a tunnel needs; on failure releases what it had opened and rethrows. */
export async function openTunnel(config: Config, options: TunnelOptions): Promise<TunnelParts> {
  const logger = options.logger ?? createLogger(config.log);
  const projects = new ProjectRegistry(config.projects);
  const upstream = new Upstream(config.upstream);
  const send = untraced(upstream.send);
  const lifecycle = new Lifecycle();
  let rateLimiting: RateLimiting | undefined;
  let spooling: Spooling | undefined;
  const abandon = async () => {
    await spooling?.stop();
    await upstream.destroy();
    await rateLimiting?.close();
  };
  try {
    const metrics = config.metrics.enabled ? await TunnelMetrics.create(config.metrics, lifecycle) : undefined;
    // Straight to the undici upstream: the tunnel's own errors never travel its pipeline, limits or spool.
    const selfMonitor = await SelfMonitor.create(config.selfMonitoring, {
      logger,
      send: forwardOf(send),
      onOutcome: metrics && ((outcome) => metrics.selfMonitoringEvent(outcome)),
    });
    rateLimiting = await RateLimiting.create(config, projects, logger);
    let toSentry = metrics ? untraced(upstream.observedBy(metrics.upstreamObserver(projects.byName.values()))) : send;
    // Next to the upstream: the concurrency gate and Sentry's limits see every call to Sentry (the spool's re-sends too).
    toSentry = rateLimiting.wrapSend(toSentry);
    // The wrappers written against a promise (an app's, the spool) take the chain as a Forward.
    if (options.wrapForward || config.spool.dir !== undefined) {
      let forward = forwardOf(toSentry);
      if (options.wrapForward) forward = options.wrapForward(forward);
      // Spooling is the outermost wrapper: it sees the final word of everything inside, and its drainer re-sends through all of it.
      if (config.spool.dir !== undefined) {
        spooling = await startSpooling({ ...config.spool, dir: resolve(config.spool.dir) }, forward, projects, logger);
        forward = spooling.forward;
      }
      toSentry = sendOf(forward);
    }
    if (metrics && spooling) metrics.watchSpool(spooling.spool);
    const limiting = rateLimiting;
    const requestLog = createRequestLog(logger, config.log);
    const pipeline = new Pipeline({
      requestLog,
      config,
      projects,
      cors: new CorsPolicy(config.cors),
      clientIp: warnOnUntrustedProxyHeaders(createClientIpResolver(config.server.trustProxy), config.server.trustProxy, logger),
      send: toSentry,
      rateLimiting: limiting,
      logger,
      lifecycle,
      observer: metrics,
      reportError: selfMonitor && ((error, record) => selfMonitor.capture(error, record)),
      processor: Processor.create(config),
    });
    const spool = spooling;
    return {
      pipeline,
      lifecycle,
      metrics,
      spooling: spool,
      async drain(ms) {
        lifecycle.shuttingDown = true;
        let finished = await idleWithin(lifecycle, ms);
        if (!finished && spool) {
          // Envelopes still on their way to Sentry are spooled and answered 200 instead of dropped.
          logger.warn({ inFlight: lifecycle.inFlight }, 'shutdown timeout reached; spooling envelopes still being forwarded');
          spool.abortInFlight();
          finished = await idleWithin(lifecycle, Math.min(SPOOL_GRACE_MS, ms));
        }
        return finished;
      },
      async release(graceful) {
        requestLog.close();
        await selfMonitor?.flush(SELF_MONITORING_FLUSH_MS);
        await spool?.stop();
        await (graceful ? upstream.close() : upstream.destroy());
        await limiting.close();
      },
    };
  } catch (error) {
    await abandon();
    throw error;
  }
}

/** Resolves true once no request is in flight, false after `ms`. */
async function idleWithin(lifecycle: Lifecycle, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    lifecycle.idle().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return finished;
}
