// The floor: the fastest honest Node tunnel — node:http in, a small body buffered, the envelope header
// line parsed and its DSN checked against the configured one (403 otherwise), an undici Pool
// (keep-alive, the tunnel's pool settings) and dispatch() with a minimal handler, status +
// content-type + body relayed. Large bodies stream once their header line is checked.
// Usage: node passthrough.js PORT UPSTREAM_URL DSN
// PASSTHROUGH_HANDLER=new uses undici's newer handler names (onRequestStart/onResponseStart/…), which
// undici 7 adapts to its native ones (onConnect/onHeaders/…) through a wrapper: the default `legacy`
// measured faster (bench/README.md).
// PASSTHROUGH_FORWARD=browser makes it also do what a tunnel does by design and the floor leaves out:
// forward the browser's User-Agent, Origin and client hints and the client's address
// (X-Forwarded-For), post with Sentry's auth query string, and answer with the CORS headers a
// cross-origin SDK needs to read Sentry's rate limits. Not the reference (issue 14 defines that);
// bench:ab runs it to tell that work apart from the rest of the tunnel's.
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { Pool } from 'undici';

const port = Number(process.argv[2]);
const upstream = new URL(process.argv[3] ?? '');
const dsn = process.argv[4] ?? '';
const handlerKind = process.env.PASSTHROUGH_HANDLER === 'new' ? 'new' : 'legacy';
const pool = new Pool(upstream.origin, { connections: 128, keepAliveTimeout: 4_000 });
const browser = process.env.PASSTHROUGH_FORWARD === 'browser';
const path = browser ? `${upstream.pathname}?sentry_version=7&sentry_key=${new URL(dsn).username}` : `${upstream.pathname}${upstream.search}`;
// The tunnel's EXPOSED_HEADERS (src/core/cors.ts), written out: bench/ compiles on its own, without src/.
const EXPOSED = 'X-Sentry-Rate-Limits, Retry-After, X-Sentry-Error';

/** Bodies up to this size are forwarded from one buffer, like sentry-tunnel's. */
const BUFFERED_BYTES = 256 * 1024;
const FORBIDDEN = '{"code":"dsn_not_allowed"}';

function dsnAllowed(body: Buffer): boolean {
  const newline = body.indexOf(10);
  try {
    const header = JSON.parse(body.toString('utf8', 0, newline === -1 ? body.length : newline)) as { dsn?: unknown } | null;
    return header?.dsn === dsn;
  } catch {
    return false;
  }
}

function answer(res: ServerResponse, status: number, contentType: string, body: Buffer | string): void {
  const origin = browser ? res.req.headers.origin : undefined;
  if (origin === undefined) res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  else {
    res.writeHead(status, {
      'content-type': contentType,
      'access-control-allow-origin': origin,
      vary: 'Origin',
      'access-control-expose-headers': EXPOSED,
      'content-length': Buffer.byteLength(body),
    });
  }
  res.end(body);
}

/** The native (legacy-named) handler: collects Sentry's small answer and relays it. */
class Relay {
  status = 0;
  contentType = 'application/json';
  chunks: Buffer[] = [];
  constructor(readonly res: ServerResponse) {}
  onConnect(): void {}
  onHeaders(status: number, raw: Buffer[]): boolean {
    this.status = status;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as Buffer;
      if (name.length === 12 && name.toString('latin1').toLowerCase() === 'content-type') this.contentType = (raw[i + 1] as Buffer).toString('latin1');
    }
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }
  onComplete(): void {
    answer(this.res, this.status, this.contentType, this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks));
  }
  onError(): void {
    if (!this.res.headersSent) this.res.writeHead(502, { connection: 'close' }).end();
  }
}

/** The same with undici's newer names (it parses the headers into an object for these). */
class RelayNew {
  status = 0;
  contentType = 'application/json';
  chunks: Buffer[] = [];
  constructor(readonly res: ServerResponse) {}
  onRequestStart(): void {}
  onResponseStart(_controller: unknown, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.status = status;
    const type = headers['content-type'];
    if (typeof type === 'string') this.contentType = type;
  }
  onResponseData(_controller: unknown, chunk: Buffer): void {
    this.chunks.push(chunk);
  }
  onResponseEnd(): void {
    answer(this.res, this.status, this.contentType, this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks));
  }
  onResponseError(): void {
    if (!this.res.headersSent) this.res.writeHead(502, { connection: 'close' }).end();
  }
}

function forward(req: IncomingMessage, res: ServerResponse, body: Buffer | IncomingMessage): void {
  const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'application/x-sentry-envelope' };
  if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
  else if (req.headers['content-length'] !== undefined) headers['content-length'] = req.headers['content-length'];
  if (browser) {
    for (const name of ['user-agent', 'origin', 'sec-ch-ua', 'sec-ch-ua-platform', 'sec-ch-ua-mobile']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    if (req.socket.remoteAddress) headers['x-forwarded-for'] = req.socket.remoteAddress;
  }
  pool.dispatch({ path, method: 'POST', headers, body }, handlerKind === 'new' ? new RelayNew(res) : new Relay(res));
}

createServer((req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size < BUFFERED_BYTES) return;
    // Large: check the header line in what has arrived, then stream the rest (what arrived goes first).
    req.off('data', onData);
    req.off('end', onEnd);
    req.pause();
    const head = Buffer.concat(chunks, size);
    if (!dsnAllowed(head)) return answer(res, 403, 'application/json', FORBIDDEN);
    req.unshift(head);
    forward(req, res, req);
  };
  const onEnd = () => {
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
    if (!dsnAllowed(body)) answer(res, 403, 'application/json', FORBIDDEN);
    else forward(req, res, body);
  };
  req.on('data', onData);
  req.on('end', onEnd);
}).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
