// Machine instructions per request, counted by valgrind's callgrind: a figure that does not move with
// the machine's load (CPU time here drifts by 2 ×; two runs of this agree within a few per cent), so it
// can tell two builds apart where bench:ab cannot. Counts user-space instructions only (the kernel's
// share of a request, its system calls, is the same for every build: bench/README.md) and weighs
// none by its cost in cycles (a cache miss counts as one), so read it next to CPU time, not instead.
//
// As bench:allocations does, it feeds openTunnel()'s pipeline in process, with no sockets: a 2 KB
// browser envelope forwarded (Sentry's answer given at once by a stub in place of undici's dispatch(),
// so the forward chain runs and only undici and the socket do not) and the same envelope for
// a foreign DSN (403); and, for scale, the least a tunnel does for that 403 (buffer the body, parse the
// header line, compare the DSN). Each build and scenario runs in its own process under callgrind, whose
// counters are zeroed after a warm-up and read after the measured requests.
//
//   npm run bench:instructions                       # this build
//   node bench/instructions.mjs /tmp/before .        # builds to compare (each a checkout with dist/ built)
//
// BENCH_REQUESTS (30000) and BENCH_WARMUP (20000) set the counts, BENCH_RUNS (1) the runs per build
// (the median is reported), BENCH_CONFIG (JSON) configuration sections merged into the tunnel's, e.g.
// '{"metrics":{"enabled":false}}' to count what a feature costs. Needs valgrind (apt-get install valgrind); about 2 minutes per build.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SCENARIOS = ['forwarded (200)', 'foreign DSN (403)', 'minimum (403)'];
const DSN = 'http://0123456789abcdef0123456789abcdef@127.0.0.1:9/2';
const FOREIGN = 'http://fedcba9876543210fedcba9876543210@127.0.0.1:9/2';
const CONCURRENCY = 50;

if (process.argv[2] === '--child') await child(process.argv[3], Number(process.argv[4]));
else await parent(process.argv.slice(2));

async function parent(roots) {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    console.error('bench:instructions needs valgrind (apt-get install valgrind)');
    process.exit(1);
  }
  const builds = (roots.length > 0 ? roots : [fileURLToPath(new URL('..', import.meta.url))]).map((root) => resolve(root));
  const runs = Number(process.env.BENCH_RUNS ?? 1);
  const only = process.env.BENCH_SCENARIOS?.split(',').map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'sentry-tunnel-instructions-'));
  const jobs = [];
  for (let run = 0; run < runs; run++) {
    for (const root of builds) SCENARIOS.forEach((_, scenario) => (only === undefined || only.includes(scenario)) && jobs.push({ root, scenario, run }));
  }
  const results = new Map();
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const count = await measure(job, dir, next);
      const key = `${job.root}\u0000${job.scenario}`;
      results.set(key, [...(results.get(key) ?? []), count]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(2, availableParallelism())) }, worker));
  const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
  console.log('| build | scenario | instructions per request (median) | runs |\n|---|---|--:|--:|');
  for (const root of builds) {
    SCENARIOS.forEach((name, scenario) => {
      const values = results.get(`${root}\u0000${scenario}`);
      if (!values) return;
      console.log(`| ${root} | ${name} | ${median(values).toLocaleString('en')} | ${values.map((v) => v.toLocaleString('en')).join(', ')} |`);
    });
  }
}

/** One build and scenario under callgrind: instructions per measured request. */
function measure({ root, scenario }, dir, id) {
  const out = join(dir, `callgrind.${id}.out`);
  // One thread: concurrent compilation and marking would add a varying share of their work to the count.
  const args = ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, '--single-threaded', fileURLToPath(import.meta.url), '--child', root, String(scenario)];
  return new Promise((resolvePromise, reject) => {
    const proc = spawn('valgrind', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk) => (stdout += chunk));
    proc.stderr.on('data', (chunk) => (stderr += chunk));
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${SCENARIOS[scenario]} of ${root} failed (${code}):\n${stderr.slice(-2000)}`));
      const requests = Number(/^requests (\d+)$/m.exec(stdout)?.[1]);
      // callgrind_control -d writes <out>.1 (the measured requests); the file itself holds what came after.
      const dump = readdirSync(dir).find((name) => name === `callgrind.${id}.out.1`);
      if (!dump || !requests) return reject(new Error(`no callgrind dump for ${SCENARIOS[scenario]} of ${root}:\n${stdout}${stderr.slice(-2000)}`));
      const total = Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, dump), 'utf8'))?.[1]);
      resolvePromise(Math.round(total / requests));
    });
  });
}

async function child(root, scenario) {
  const { BROWSER_HEADERS, errorEnvelope } = await import('./.build/envelopes.js');
  const dist = (path) => import(pathToFileURL(join(root, 'dist', path)).href);
  const { validateConfig } = await dist('config/validate.js');
  const { createLogger } = await dist('observability/logger.js');
  const { openTunnel } = await dist('tunnel.js');
  const base = {
    projects: { web: { dsn: DSN } },
    cors: { origins: ['https://app.example.com'] },
    rateLimit: { perClient: { max: 1_000_000_000, windowMs: 1_000 } },
  };
  // BENCH_CONFIG: sections merged into that configuration, to count what one feature costs.
  for (const [section, values] of Object.entries(JSON.parse(process.env.BENCH_CONFIG ?? '{}'))) base[section] = { ...base[section], ...values };
  const config = validateConfig(base);
  const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  const reply = Buffer.from('{"id":"f88058b96591610ec78219a593155b4d"}');
  // Sentry's answer comes from a stub in place of undici's dispatch(), so the whole forward chain runs
  // (the gate, Upstream.send, its ReplyHandler) and only undici's own work and the socket do not.
  const { Agent } = await import('undici');
  const replyHeaders = [Buffer.from('Content-Type'), Buffer.from('application/json'), Buffer.from('Content-Length'), Buffer.from(String(reply.length))];
  Agent.prototype.dispatch = function (_options, handler) {
    queueMicrotask(() => {
      handler.onConnect(() => {});
      handler.onHeaders(200, replyHeaders, () => {}, 'OK');
      handler.onData(reply);
      handler.onComplete(null);
    });
    return true;
  };
  const parts = await openTunnel(config, { logger: createLogger(config.log, discard) });
  const body = errorEnvelope(scenario === 0 ? DSN : FOREIGN).body;
  // node:http makes each request's header values as new strings: a Map hit on one (the origin) hashes it anew.
  const headerText = JSON.stringify({ ...BROWSER_HEADERS, host: '127.0.0.1:8080', 'content-length': String(body.length) });
  const expected = scenario === 0 ? 200 : 403;
  const one =
    scenario === 2 ? minimum : (req) => parts.pipeline.tunnel({ method: 'POST', path: '/tunnel', headers: JSON.parse(headerText), body: req, peerAddress: '127.0.0.1', closeReportsAbort: true }, undefined, '/tunnel');
  let done = 0;
  const batch = async (count) => {
    const target = done + count;
    const worker = async () => {
      while (done < target) {
        const req = new PassThrough();
        req.end(body);
        const answer = await one(req);
        if (answer.status !== expected) throw new Error(`expected ${expected}, got ${answer.status}`);
        done++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  await batch(Number(process.env.BENCH_WARMUP ?? 20_000));
  execFileSync('callgrind_control', ['--zero', String(process.pid)], { stdio: 'ignore' });
  const before = done;
  await batch(Number(process.env.BENCH_REQUESTS ?? 30_000));
  const measured = done - before;
  execFileSync('callgrind_control', ['--dump', String(process.pid)], { stdio: 'ignore' });
  console.log(`requests ${measured}`);
  process.exit(0);
}

/** The least a tunnel does to refuse a foreign DSN: the body buffered, the header line parsed, the DSN compared. */
function minimum(req) {
  return new Promise((resolvePromise) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const newline = body.indexOf(10);
      let header;
      try {
        header = JSON.parse(body.toString('utf8', 0, newline === -1 ? body.length : newline));
      } catch {}
      const status = header?.dsn === DSN ? 200 : 403;
      resolvePromise({ status, headers: { 'content-type': 'application/json' }, body: '{"code":"dsn_not_allowed"}' });
    });
  });
}
