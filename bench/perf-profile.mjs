// Where a forward's CPU time goes, sentry-tunnel against the floor, kernel and native code included:
// each peer (the shipped-defaults tunnel and the pass-through, both under node --perf-basic-prof so
// JIT-compiled JavaScript has names) is loaded by wrk at 50 connections with the 2 KB envelope while
// `perf record -e cpu-clock` samples it; each symbol's share of the samples times the peer's CPU per
// request (from /proc, over the same window) gives microseconds per request, and the table lists the
// symbols by how much more the tunnel spends in them. --cpu-prof (npm run bench -- --cpu-prof DIR)
// sees JavaScript only; this also sees the kernel, V8's builtins (promises, inline caches, regular
// expressions) and the garbage collector.
//
//   npm run bench:perf -- [seconds=20] [rows=40]        (BENCH_ENVELOPE=20kb: the 20 KB transaction;
//                                                        BENCH_ENVELOPE=foreign: a foreign DSN, both answer 403)
//
// Peers run one after the other (rounds alternate), so read it next to bench:ab: a symbol's figure
// moves by ~10 % between runs, and TurboFan inlines differently in the two programs, so a JS
// function's time may show under its caller's name. Needs perf (apt-get install linux-perf) and wrk.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROWSER_HEADERS, errorEnvelope, transactionEnvelope } from './.build/envelopes.js';
import { foreignDsn } from './.build/flood.js';
import { runLoad } from './.build/load.js';
import { cpuSeconds } from './.build/memory.js';
import { CLI, benchUpstream, envelopeUrl, freePort, hasBinary, tunnelConfig } from './.build/peers.js';
import { installCleanup, startProcess, stopProcess, waitForPort } from './.build/processes.js';
import { FakeUpstream } from './.build/upstream-control.js';

for (const binary of ['perf', 'wrk']) {
  if (!hasBinary(binary)) {
    console.error(`bench:perf needs ${binary} (apt-get install ${binary === 'perf' ? 'linux-perf' : binary})`);
    process.exit(1);
  }
}
installCleanup(20 * 60_000);
const seconds = Number(process.argv[2] ?? 20);
const rows = Number(process.argv[3] ?? 40);
const dir = mkdtempSync(join(tmpdir(), 'sentry-tunnel-perf-'));
const fake = await FakeUpstream.start();
const upstream = benchUpstream(fake.port);
// BENCH_ENVELOPE=20kb loads the ~20 KB transaction envelope instead; =foreign the 2 KB one for a DSN
// neither peer forwards to, so both answer 403 and the upstream leg is left out.
const kind = process.env.BENCH_ENVELOPE;
const envelope = kind === '20kb' ? transactionEnvelope(upstream.dsn) : errorEnvelope(kind === 'foreign' ? foreignDsn(upstream) : upstream.dsn);

async function start(name) {
  const port = await freePort();
  let args;
  if (name === 'pass-through') {
    args = [join(import.meta.dirname, '.build', 'peers', 'passthrough.js'), String(port), envelopeUrl(upstream), upstream.dsn];
  } else {
    const file = join(dir, 'tunnel.json');
    writeFileSync(file, JSON.stringify(tunnelConfig(port, upstream)));
    args = [CLI, 'serve', '--config', file];
  }
  // In the temporary directory: node --perf-basic-prof also writes a V8 log file where it runs.
  const child = startProcess(process.execPath, ['--perf-basic-prof', ...args], { stdio: ['ignore', 'ignore', 'inherit'], cwd: dir }, 'peer');
  await waitForPort(port, child);
  return { name, child, pid: child.pid, url: `http://127.0.0.1:${port}/tunnel` };
}

const load = (peer, durationS) => runLoad('wrk', { url: peer.url, body: envelope.body, headers: BROWSER_HEADERS, connections: 50, durationS }, dir);

/** One sampled window: symbol → µs per request, and the peer's CPU per request. */
async function profile(peer) {
  await load(peer, 10); // warm-up: optimised code, steady pools
  const data = join(dir, `${peer.name}.perf.data`);
  const before = cpuSeconds(peer.pid);
  const loaded = load(peer, seconds);
  execFileSync('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '2999', '-p', String(peer.pid), '-o', data, '--', 'sleep', String(seconds - 1)], { stdio: 'ignore' });
  const result = await loaded;
  const cpuPerRequest = ((cpuSeconds(peer.pid) - before) * 1e6) / result.requests;
  const report = execFileSync('perf', ['report', '-i', data, '--no-children', '--sort', 'sym', '-g', 'none', '--stdio'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
  const symbols = new Map();
  for (const line of report.split('\n')) {
    const match = /^\s+([\d.]+)%\s+\[(.)\]\s+(.*)$/.exec(line);
    if (!match) continue;
    const us = (Number(match[1]) / 100) * cpuPerRequest;
    const kernel = match[2] === 'k';
    add(symbols, kernel ? 'kernel (all)' : 'user space (all)', us);
    add(symbols, kernel ? `[kernel] ${match[3].trim()}` : symbolName(match[3].trim()), us);
  }
  return { symbols, cpuPerRequest, rps: result.rps };
}

function add(map, key, value) {
  map.set(key, (map.get(key) ?? 0) + value);
}

/** JIT code without its tier mark and file (the two programs load undici from different files). */
function symbolName(symbol) {
  const js = /^JS:[*^~+]?(\S*)\s/.exec(symbol);
  if (js) return `JS ${js[1] || '(anonymous)'}${/ node:/.test(symbol) ? ' (node)' : ''}`;
  return symbol.replace(/\(.*$/, '');
}

const tunnel = await start('sentry-tunnel');
const floor = await start('pass-through');
const [t, f] = [await profile(tunnel), await profile(floor)];
await stopProcess(tunnel.child);
await stopProcess(floor.child);

const fmt = (us) => us.toFixed(2);
console.log(`CPU per request: sentry-tunnel ${fmt(t.cpuPerRequest)} µs (${t.rps.toFixed(0)} req/s), the floor ${fmt(f.cpuPerRequest)} µs (${f.rps.toFixed(0)} req/s)\n`);
console.log('| symbol | sentry-tunnel µs/req | the floor µs/req | difference |\n|---|--:|--:|--:|');
const names = [...new Set([...t.symbols.keys(), ...f.symbols.keys()])];
const diff = (name) => (t.symbols.get(name) ?? 0) - (f.symbols.get(name) ?? 0);
const totals = names.filter((name) => name.endsWith('(all)'));
for (const name of [...totals, ...names.filter((name) => !name.endsWith('(all)')).sort((a, b) => diff(b) - diff(a)).slice(0, rows)]) {
  console.log(`| ${name.replaceAll('|', '\\|')} | ${fmt(t.symbols.get(name) ?? 0)} | ${fmt(f.symbols.get(name) ?? 0)} | ${diff(name) >= 0 ? '+' : ''}${fmt(diff(name))} |`);
}
process.exit(0);
