// The node:http server: wires config into the pipeline, listens, guards against slow clients, and
// shuts down gracefully (readiness off, listener closed, in-flight requests finished, pools closed).
import { STATUS_CODES, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClientIpResolver } from './client-ip.js';
import type { Config } from './config.js';
import { CorsPolicy } from './cors.js';
import { TunnelError, errorBody } from './errors.js';
import type { Logger } from './logger.js';
import { Lifecycle, type TunnelContext, createRequestHandler } from './pipeline.js';
import { Processor } from './processing.js';
import { ProjectRegistry } from './projects.js';
import { type Forward, Upstream } from './upstream.js';

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
  /** Stops taking traffic, lets in-flight requests finish (up to server.shutdownTimeoutMs), closes everything. */
  shutdown(): Promise<void>;
}

/** Start-up failures a person can act on, such as a port already in use. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export async function startTunnel(config: Config, options: StartOptions): Promise<RunningTunnel> {
  const { logger } = options;
  const projects = new ProjectRegistry(config.projects);
  const upstream = new Upstream(config.upstream);
  const lifecycle = new Lifecycle();
  const ctx: TunnelContext = {
    config,
    projects,
    cors: new CorsPolicy(config.cors),
    clientIp: createClientIpResolver(config.server.trustProxy),
    forward: options.wrapForward ? options.wrapForward(upstream.forward) : upstream.forward,
    logger,
    lifecycle,
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
    const body = errorBody(answer);
    socket.end(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });

  await listen(server, config.server.host, config.server.port);
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}${config.server.path}`;
  const projectList = [...projects.byName.values()].map((project) => `${project.name} → ${project.target.origin}`).join(', ');
  logger.info({ url, projects: [...projects.byName.values()].map((p) => ({ name: p.name, dsn: p.redactedDsn })) }, `sentry-tunnel listening on ${url} — projects: ${projectList}`);

  let shutdown: Promise<void> | undefined;
  return {
    url,
    address,
    server,
    lifecycle,
    shutdown() {
      shutdown ??= (async () => {
        lifecycle.shuttingDown = true;
        logger.info({ inFlight: lifecycle.inFlight }, 'shutting down: no new connections, finishing in-flight requests');
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          lifecycle.idle().then(() => true),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), config.server.shutdownTimeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (!finished) logger.warn({ inFlight: lifecycle.inFlight }, 'shutdown timeout reached; closing remaining connections');
        server.closeAllConnections();
        await closed;
        await (finished ? upstream.close() : upstream.destroy());
        logger.info('stopped');
      })();
      return shutdown;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE') {
        reject(new StartupError(`Port ${port} on ${host} is already in use: stop the other process or choose another --port.`));
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
