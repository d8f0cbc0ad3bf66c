// The fake Sentry ingest the peers forward to, run as its own process: reads every body to the end,
// answers 200 `{"id":…}` on a keep-alive connection, and reports on /__bench/stats how busy it was
// (event-loop utilisation, CPU) so the bench can show it was not the bottleneck, and whether the bodies
// that arrived were byte-for-byte the ones sent (/__bench/expect): small bodies are compared whole
// (cheap enough not to slow the fake down), large ones by SHA-256 while they stream.
// Usage: node upstream.js PORT
import { createHash } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface UpstreamStats {
  requests: number;
  bytes: number;
  /** Bodies whose SHA-256 was one of the expected ones, and bodies that matched none. */
  verified: number;
  mismatched: number;
  /** Connections opened to the fake upstream (a peer that does not keep connections alive opens many). */
  connections: number;
  /** Event-loop utilisation (0–1) and CPU share of one core since the last reset. */
  elu: number;
  cpu: number;
}

const port = Number(process.argv[2]);
const EVENT_ID = /"event_id":"([0-9a-f]{32})"/;

/** Bodies up to this size are compared byte for byte; larger ones (and chunked ones) by hash. */
const COMPARE_WHOLE_BYTES = 1024 * 1024;

export interface Expectation {
  /** base64 of a small body, or the SHA-256 (hex) of a large one. */
  readonly body?: string;
  readonly sha256?: string;
}

let expectedBodies: Buffer[] = [];
let expectedHashes = new Set<string>();
let stats: UpstreamStats;
let eluMark = performance.eventLoopUtilization();
let cpuMark = process.cpuUsage();
let timeMark = performance.now();
reset();

function reset(): void {
  stats = { requests: 0, bytes: 0, verified: 0, mismatched: 0, connections: 0, elu: 0, cpu: 0 };
  eluMark = performance.eventLoopUtilization();
  cpuMark = process.cpuUsage();
  timeMark = performance.now();
}

function snapshot(): UpstreamStats {
  const cpu = process.cpuUsage(cpuMark);
  const elapsedMs = performance.now() - timeMark;
  return { ...stats, elu: performance.eventLoopUtilization(eluMark).utilization, cpu: (cpu.user + cpu.system) / 1000 / elapsedMs };
}

function readAll(req: IncomingMessage, onEnd: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => onEnd(Buffer.concat(chunks)));
}

function control(req: IncomingMessage, res: ServerResponse): void {
  const reply = (value: unknown) => {
    const body = JSON.stringify(value);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (req.url === '/__bench/stats') return readAll(req, () => reply(snapshot()));
  if (req.url === '/__bench/reset') return readAll(req, () => reply((reset(), {})));
  if (req.url === '/__bench/expect') {
    return readAll(req, (body) => {
      const expectations = JSON.parse(body.toString()) as Expectation[];
      expectedBodies = expectations.flatMap((e) => (e.body === undefined ? [] : [Buffer.from(e.body, 'base64')]));
      expectedHashes = new Set(expectations.flatMap((e) => (e.sha256 === undefined ? [] : [e.sha256])));
      reply({});
    });
  }
  res.writeHead(404).end();
}

function ingest(req: IncomingMessage, res: ServerResponse): void {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  const hash = declared <= COMPARE_WHOLE_BYTES ? undefined : createHash('sha256');
  const chunks: Buffer[] = [];
  let bytes = 0;
  let eventId: string | undefined;
  req.on('data', (chunk: Buffer) => {
    if (eventId === undefined) eventId = EVENT_ID.exec(chunk.toString('latin1', 0, Math.min(chunk.length, 512)))?.[1] ?? '';
    bytes += chunk.length;
    if (hash) hash.update(chunk);
    else chunks.push(chunk);
  });
  req.on('end', () => {
    let intact: boolean;
    if (hash) intact = expectedHashes.has(hash.digest('hex'));
    else {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes);
      intact = expectedBodies.some((expected) => expected.equals(body));
    }
    stats.requests++;
    stats.bytes += bytes;
    if (intact) stats.verified++;
    else stats.mismatched++;
    const body = `{"id":"${eventId || '00000000000000000000000000000000'}"}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
}

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, (req, res) => {
  if (req.url?.startsWith('/__bench/')) control(req, res);
  else ingest(req, res);
});
server.on('connection', () => stats.connections++);
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
