// The node:http server: wires config into the pipeline, listens, guards against slow clients, and
// shuts down gracefully (readiness off, listener closed, in-flight requests finished, pools closed).
import { STATUS_CODES, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createClientIpResolver } from '../core/client-ip.js';
import type { Config } from '../config/schema.js';
import { CorsPolicy } from '../core/cors.js';
import { TunnelError, errorBody } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { TunnelMetrics } from '../observability/metrics.js';
import { Lifecycle, type TunnelContext, createRequestHandler } from '../core/pipeline.js';
import { Processor } from '../processing/processing.js';
import { ProjectRegistry } from '../core/projects.js';
import { type Spooling, startSpooling } from '../spool/spooling.js';
import type { Spool } from '../spool/spool.js';
import { RateLimiting } from '../limits/rate-limiting.js';
import { SelfMonitor } from '../observability/self-monitoring.js';
import { type Forward, Upstream } from '../upstream/upstream.js';

/** How long shutdown waits for self-monitoring reports still on their way. */
const SELF_MONITORING_FLUSH_MS = 2_000;

export interface StartOptions {
  readonly logger: Logger;
  /** Wraps the forwarder (rate limits, spooling, …); the innermost step is the undici upstream. */
  readonly wrapForward?: (forward: Forward) => Forward;
}

export interface RunningTunnel {
  /** The URL SDKs post to, e.g. http://127.0.0.1:8080/tunnel */
  readonly url: string;
  readonly address: AddressInfo;
  readonly server: Server;
  readonly lifecycle: Lifecycle;
  /** The on-disk spool when spool.dir is set (stats and counters for metrics). */
  readonly spool: Spool | undefined;
  /** The metrics registry (absent when metrics.enabled is false), to register more gauges. */
  readonly metrics: TunnelMetrics | undefined;
  /** Where Prometheus scrapes, e.g. http://127.0.0.1:9464/metrics (absent when metrics are off). */
  readonly metricsUrl: string | undefined;
  /** Stops taking traffic, lets in-flight requests finish (up to server.shutdownTimeoutMs), closes everything. */
  shutdown(): Promise<void>;
}

/** Start-up failures a person can act on, such as a port already in use. */
/** After the shutdown timeout, how long aborted forwards get to write themselves to the spool. */
const SPOOL_GRACE_MS = 2_000;

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export async function startTunnel(config: Config, options: StartOptions): Promise<RunningTunnel> {
  const { logger } = options;
  const projects = new ProjectRegistry(config.projects);
  const upstream = new Upstream(config.upstream);
  const lifecycle = new Lifecycle();
  const metrics = config.metrics.enabled ? await TunnelMetrics.create(config.metrics, lifecycle) : undefined;
  // Straight to the undici upstream: the tunnel's own errors never travel its pipeline, limits or spool.
  const selfMonitor = await SelfMonitor.create(config.selfMonitoring, {
    logger,
    send: upstream.forward,
    onOutcome: metrics && ((outcome) => metrics.selfMonitoringEvent(outcome)),
  });
  const rateLimiting = await RateLimiting.create(config, projects, logger);
  let forward = metrics ? metrics.wrapUpstream(upstream.forward, projects.byName.values()) : upstream.forward;
  // Next to the upstream: the concurrency gate and Sentry's limits see every call to Sentry (the spool's re-sends too).
  forward = rateLimiting.wrapForward(forward);
  if (options.wrapForward) forward = options.wrapForward(forward);
  // Spooling is the outermost wrapper: it sees the final word of everything inside, and its drainer re-sends through all of it.
  let spooling: Spooling | undefined;
  /** Releases what start-up has opened so far, when a later step fails. */
  const abandon = async () => {
    await spooling?.stop();
    await upstream.destroy();
    await rateLimiting.close();
  };
  if (config.spool.dir !== undefined) {
    try {
      spooling = await startSpooling({ ...config.spool, dir: resolve(config.spool.dir) }, forward, projects, logger);
    } catch (error) {
      await abandon();
      throw new StartupError(error instanceof Error ? error.message : String(error), { cause: error });
    }
  }
  if (metrics && spooling) metrics.watchSpool(spooling.spool);
  const ctx: TunnelContext = {
    config,
    projects,
    cors: new CorsPolicy(config.cors),
    clientIp: createClientIpResolver(config.server.trustProxy),
    forward: spooling?.forward ?? forward,
    rateLimiting,
    logger,
    lifecycle,
    spool: spooling?.spool,
    observer: metrics,
    metricsEndpoint: config.metrics.port === null ? metrics : undefined,
    reportError: selfMonitor && ((error, record) => selfMonitor.capture(error, record)),
    processor: Processor.create(config),
  };

  const server = createServer(
    {
      headersTimeout: config.server.headersTimeoutMs,
      // The body reader enforces server.requestTimeoutMs itself, to answer 408 with the catalogue's JSON.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1_000, config.server.headersTimeoutMs),
      keepAliveTimeout: 5_000,
    },
    createRequestHandler(ctx),
  );
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Malformed or too-slow HTTP never reaches the pipeline; answer it from the catalogue and keep serving.
    if (!socket.writable || error.code === 'ECONNRESET') return socket.destroy();
    const answer = new TunnelError(error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request');
    metrics?.rejected(answer.code);
    const body = errorBody(answer);
    socket.end(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });

  try {
    await listen(server, config.server.host, config.server.port, '--port');
  } catch (error) {
    await abandon();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const url = `${origin(address)}${config.server.path}`;
  let metricsServer: Server | undefined;
  let metricsUrl = metrics && `${origin(address)}${config.metrics.path}`;
  if (metrics && config.metrics.port !== null) {
    metricsServer = createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, createRequestHandler(ctx, metrics));
    metricsServer.on('clientError', (_error, socket) => socket.destroy());
    await listen(metricsServer, config.server.host, config.metrics.port, 'metrics.port').catch(async (error: unknown) => {
      await new Promise((resolve) => server.close(resolve));
      await abandon();
      throw error;
    });
    metricsUrl = `${origin(metricsServer.address() as AddressInfo)}${config.metrics.path}`;
  }
  const projectList = [...projects.byName.values()].map((project) => `${project.name} → ${project.target.origin}`).join(', ');
  logger.info(
    { url, metricsUrl, selfMonitoring: selfMonitor !== undefined, projects: [...projects.byName.values()].map((p) => ({ name: p.name, dsn: p.redactedDsn })) },
    `sentry-tunnel listening on ${url} — projects: ${projectList}`,
  );

  let shutdown: Promise<void> | undefined;
  return {
    url,
    address,
    server,
    lifecycle,
    spool: spooling?.spool,
    metrics,
    metricsUrl,
    shutdown() {
      shutdown ??= (async () => {
        lifecycle.shuttingDown = true;
        logger.info({ inFlight: lifecycle.inFlight }, 'shutting down: no new connections, finishing in-flight requests');
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        let finished = await idleWithin(lifecycle, config.server.shutdownTimeoutMs);
        if (!finished && spooling) {
          // Envelopes still on their way to Sentry are spooled and answered 200 instead of dropped.
          logger.warn({ inFlight: lifecycle.inFlight }, 'shutdown timeout reached; spooling envelopes still being forwarded');
          spooling.abortInFlight();
          finished = await idleWithin(lifecycle, Math.min(SPOOL_GRACE_MS, config.server.shutdownTimeoutMs));
        }
        if (!finished) logger.warn({ inFlight: lifecycle.inFlight }, 'shutdown timeout reached; closing remaining connections');
        server.closeAllConnections();
        await closed;
        // Metrics stay scrapeable while requests drain; then go too.
        if (metricsServer) {
          const metricsClosed = new Promise<void>((resolve) => metricsServer.close(() => resolve()));
          metricsServer.closeAllConnections();
          await metricsClosed;
        }
        await selfMonitor?.flush(SELF_MONITORING_FLUSH_MS);
        await spooling?.stop();
        await (finished ? upstream.close() : upstream.destroy());
        await rateLimiting.close();
        logger.info('stopped');
      })();
      return shutdown;
    },
  };
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

function origin(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** `option` names the setting that chose the port, for the message a person reads. */
function listen(server: Server, host: string, port: number, option: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE') {
        reject(new StartupError(`Port ${port} on ${host} is already in use: stop the other process or choose another ${option}.`));
      } else if (error.code === 'EACCES') {
        reject(new StartupError(`Not allowed to listen on ${host}:${port}: choose a port above 1023 or run with the needed privileges.`));
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new StartupError(`Cannot listen on ${host}: no such address on this machine.`));
      } else reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
