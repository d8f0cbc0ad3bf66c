// sentry-tunnel's pipeline as an app embeds it: createTunnel(config).middleware as the whole handler of
// a bare node:http server, with the bench's tunnel configuration (metrics on, as the daemon has them).
// Next to the daemon it tells the daemon's own work (its routes, probes, signals, the process metrics)
// from the pipeline's; next to the floor, the pipeline's from node:http's and undici's.
// Usage, as the floor's: node middleware.js PORT UPSTREAM_URL DSN — a bench:ab "script" variant:
//   npm run bench:ab -- '[{"name":"daemon"},{"name":"middleware","script":"bench/.build/peers/middleware.js"}]'
import { createServer } from 'node:http';
import { type ConfigInput, createTunnel } from 'sentry-tunnel';
import { tunnelConfig } from '../peers.js';

const port = Number(process.argv[2]);
const upstream = new URL(process.argv[3] ?? '');
const dsn = process.argv[4] ?? '';
const config = tunnelConfig(port, { port: Number(upstream.port), dsn, projectId: new URL(dsn).pathname.slice(1) }) as ConfigInput;
// Embedded, metrics are off unless asked for: on, as the daemon it is compared with has them.
const tunnel = createTunnel({ ...config, metrics: { enabled: true } });
await tunnel.ready();
const server = createServer(tunnel.middleware).listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  void tunnel.close().then(() => process.exit(0));
});
