// The daemon's node:http listener: createTunnel's pipeline behind the daemon's own routes (the tunnel
// path, /healthz, /readyz, /metrics), guards against slow clients, and a graceful shutdown (readiness
// off, listener closed, in-flight requests finished or spooled, pools closed).
import { Buffer } from 'node:buffer';
import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nodeInbound, writeAnswer } from '../adapters/node.js';
import type { Config } from '../config/schema.js';
import type { Answer } from '../core/exchange.js';
import type { Lifecycle } from '../core/pipeline.js';
import { ProjectRegistry } from '../core/projects.js';
import { canonicalPath, createRouter } from '../core/routes.js';
import { pathOf } from '../core/tunnel-path.js';
import { TunnelError, errorBody } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { MetricsEndpoint, TunnelMetrics } from '../observability/metrics.js';
import type { Spool } from '../spool/spool.js';
import { type TunnelParts, createTunnel, tunnelParts } from '../tunnel.js';
import type { Forward } from '../upstream/upstream.js';
import { HEALTH_PATHS, health, metricsEndpoint, notFound } from './health.js';
import { drainDelay } from './drain-delay.js';
import { missingHost, refuseMissingHost } from './host-header.js';
import { lingerOnClose } from './lingering-close.js';

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
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export async function startTunnel(config: Config, options: StartOptions): Promise<RunningTunnel> {
  const { logger } = options;
  const tunnel = createTunnel(config, options);
  let parts: TunnelParts;
  try {
    parts = await tunnel[tunnelParts]();
  } catch (error) {
    // Only the spool can fail here with a reason a person acts on (spool.dir not writable, in use).
    throw new StartupError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  const { pipeline, lifecycle, metrics, spooling } = parts;
  const spool = spooling?.spool;

  const server = createServer(
    {
      headersTimeout: config.server.headersTimeoutMs,
      // The body reader enforces server.requestTimeoutMs itself, to answer 408 with the catalogue's JSON.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1_000, config.server.headersTimeoutMs),
      keepAliveTimeout: 5_000,
      // host-header.ts answers a missing Host from the catalogue; node:http would send an empty 400.
      requireHostHeader: false,
    },
    createListener(config, parts, config.metrics.port === null ? metrics : undefined),
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
    await parts.release(false);
    throw error;
  }
  const address = server.address() as AddressInfo;
  const url = `${origin(address)}${canonicalPath(config.server.path)}`;
  let metricsServer: Server | undefined;
  let metricsUrl = metrics && `${origin(address)}${config.metrics.path}`;
  if (metrics && config.metrics.port !== null) {
    metricsServer = createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000, requireHostHeader: false }, createListener(config, parts, metrics, true));
    metricsServer.on('clientError', (_error, socket) => socket.destroy());
    await listen(metricsServer, config.server.host, config.metrics.port, 'metrics.port').catch(async (error: unknown) => {
      await new Promise((resolve) => server.close(resolve));
      await parts.release(false);
      throw error;
    });
    metricsUrl = `${origin(metricsServer.address() as AddressInfo)}${config.metrics.path}`;
  }
  const projects = [...new ProjectRegistry(config.projects).byName.values()];
  const projectList = projects.map((project) => `${project.name} → ${project.target.origin}`).join(', ');
  logger.info(
    { url, metricsUrl, selfMonitoring: config.selfMonitoring.dsn !== '', projects: projects.map((p) => ({ name: p.name, dsn: p.redactedDsn })) },
    `sentry-tunnel listening on ${url} — projects: ${projectList}`,
  );

  let shutdown: Promise<void> | undefined;
  return {
    url,
    address,
    server,
    lifecycle,
    spool,
    metrics,
    metricsUrl,
    shutdown() {
      shutdown ??= (async () => {
        logger.info({ inFlight: lifecycle.inFlight }, 'shutting down: no new connections, finishing in-flight requests');
        lifecycle.shuttingDown = true;
        await drainDelay(config.server.drainDelayMs, logger);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const finished = await parts.drain(config.server.shutdownTimeoutMs);
        if (!finished) logger.warn({ inFlight: lifecycle.inFlight }, 'shutdown timeout reached; closing remaining connections');
        server.closeAllConnections();
        await closed;
        // Metrics stay scrapeable while requests drain; then go too.
        if (metricsServer) {
          const metricsClosed = new Promise<void>((resolve) => metricsServer.close(() => resolve()));
          metricsServer.closeAllConnections();
          await metricsClosed;
        }
        await parts.release(finished);
        logger.info('stopped');
      })();
      return shutdown;
    },
  };
}

/**
 * The daemon's routes on the main port (`metrics` set when metrics are served there) or, with
 * `metricsOnly`, on metrics.port, which serves the exposition and nothing else.
 */
function createListener(config: Config, parts: TunnelParts, metrics: MetricsEndpoint | undefined, metricsOnly = false): (req: IncomingMessage, res: ServerResponse) => void {
  const { pipeline, lifecycle } = parts;
  const tunnelPath = createRouter(config.server.path);
  const serveHealth = health(lifecycle, parts.spooling?.spool);
  const serveMetrics = metrics && metricsEndpoint(metrics);
  return (req, res) => {
    const path = pathOf(req.url);
    const inbound = nodeInbound(req, path);
    const respond = (result: Answer) => {
      // Installed after the answer is written and before node:http ends the socket (on 'finish').
      if (writeAnswer(req, res, result, lifecycle.shuttingDown)) lingerOnClose(req);
    };
    let answer: Promise<Answer>;
    // Probes and scrapes are not traffic: they are logged, but not counted by metrics.
    if (missingHost(req)) answer = pipeline.run(inbound, refuseMissingHost, true);
    else if (serveMetrics && path === metrics?.path) answer = pipeline.run(inbound, serveMetrics, false);
    else if (metricsOnly) answer = pipeline.run(inbound, notFound, false);
    else {
      const match = tunnelPath(path);
      if (match) return pipeline.handle(inbound, match.project, match.tunnelPath, respond);
      if (HEALTH_PATHS.has(path)) answer = pipeline.run(inbound, serveHealth, false);
      else answer = pipeline.run(inbound, notFound, true);
    }
    void answer.then(respond);
  };
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
