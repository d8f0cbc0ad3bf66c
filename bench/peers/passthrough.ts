// The floor: the least a Node tunnel can do — node:http in, undici out, the body streamed through, no
// checks, no logging. Usage: node passthrough.js PORT UPSTREAM_URL
import { createServer } from 'node:http';
import { Agent } from 'undici';

const port = Number(process.argv[2]);
const upstream = new URL(process.argv[3] ?? '');
// The same pool settings as sentry-tunnel's defaults, so only the per-request work differs.
const agent = new Agent({ connections: 128, keepAliveTimeout: 4_000 });
const target = { origin: upstream.origin, path: `${upstream.pathname}${upstream.search}` };

createServer((req, res) => {
  const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'application/x-sentry-envelope' };
  if (req.headers['content-length'] !== undefined) headers['content-length'] = req.headers['content-length'];
  agent
    .request({ ...target, method: 'POST', headers, body: req })
    .then(async (response) => {
      const body = Buffer.from(await response.body.arrayBuffer());
      res.writeHead(response.statusCode, { 'content-type': String(response.headers['content-type']), 'content-length': body.length });
      res.end(body);
    })
    .catch(() => {
      res.writeHead(502, { connection: 'close' }).end();
    });
}).listen(port, '127.0.0.1');
process.on("SIGTERM", () => process.exit(0));
