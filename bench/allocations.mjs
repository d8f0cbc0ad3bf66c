// Heap bytes allocated per request by the pipeline, and where: a sampling heap profile that keeps the
// objects scavenged since (V8's includeObjectsCollectedBy{Minor,Major}GC), over requests fed to
// openTunnel()'s pipeline in process, with no sockets: a 2 KB browser envelope forwarded (the call to
// Sentry answered at once by a stub) and the same envelope for a foreign DSN (403). Unlike CPU time,
// the figure barely moves on a noisy machine, so it can compare two builds where bench:ab cannot.
// Runs the built code: npm run build first. BENCH_REQUESTS sets the number of requests (20000).
import { Session } from 'node:inspector/promises';
import { PassThrough, Writable } from 'node:stream';
import { validateConfig } from '../dist/config/validate.js';
import { createLogger } from '../dist/observability/logger.js';
import { openTunnel } from '../dist/tunnel.js';
import { BROWSER_HEADERS, errorEnvelope } from './.build/envelopes.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const BATCH = 500;
const DSN = 'http://0123456789abcdef0123456789abcdef@127.0.0.1:9/2';
const FOREIGN = 'http://fedcba9876543210fedcba9876543210@127.0.0.1:9/2';
const SENTRY_REPLY = Buffer.from('{"id":"f88058b96591610ec78219a593155b4d"}');

const config = validateConfig({
  projects: { web: { dsn: DSN } },
  cors: { origins: ['https://app.example.com'] },
  rateLimit: { perClient: { max: 1_000_000_000, windowMs: 1_000 } },
});
const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const parts = await openTunnel(config, {
  logger: createLogger(config.log, discard),
  wrapForward: () => async () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: SENTRY_REPLY }),
});

async function requests(body, status, count) {
  const headers = { ...BROWSER_HEADERS, host: '127.0.0.1:8080', 'content-length': String(body.length) };
  for (let done = 0; done < count; done += BATCH) {
    const answers = [];
    for (let i = 0; i < BATCH; i++) {
      const req = new PassThrough();
      req.end(body);
      answers.push(parts.pipeline.tunnel({ method: 'POST', path: '/tunnel', headers, body: req, peerAddress: '127.0.0.1' }, undefined, '/tunnel'));
    }
    for (const answer of await Promise.all(answers)) if (answer.status !== status) throw new Error(`expected ${status}, got ${answer.status}`);
  }
}

const session = new Session();
session.connect();
for (const [name, dsn, status] of [['forwarded (200)', DSN, 200], ['foreign DSN (403)', FOREIGN, 403]]) {
  const body = errorEnvelope(dsn).body;
  await requests(body, status, 10_000); // warm-up: optimised code allocates differently
  await session.post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await requests(body, status, REQUESTS);
  const { profile } = await session.post('HeapProfiler.stopSampling');
  const bySite = new Map();
  let total = 0;
  const walk = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const site = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(dist|node_modules|bench)\//, '$1/')}:${lineNumber + 1}`;
    total += node.selfSize;
    if (node.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child);
  };
  walk(profile.head);
  console.log(`${name}: ${Math.round(total / REQUESTS)} bytes allocated per request (sampled, ${REQUESTS} requests; the PassThrough standing in for the socket included)`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${String(Math.round(bytes / REQUESTS)).padStart(6)}  ${site}`);
}
process.exit(0);
