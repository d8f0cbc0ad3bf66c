// Paired A/B of sentry-tunnel variants: each variant is its own `serve` process (a config overlay
// and/or environment), all loaded in alternating short rounds by wrk at 50 connections with the 2 KB
// envelope, CPU per request read from /proc. Pairing rounds makes a 2-5 % difference visible on a
// machine whose speed drifts by 2x; run an A/A pair first to see the resolution.
//
//   npm run bench:ab -- '[{"name":"default"},{"name":"no-metrics","config":{"metrics":{"enabled":false}}},
//                         {"name":"pass-through","passthrough":true}]' [rounds=8] [seconds=4]
//
// A variant may also name another build of the CLI ("cli": "/path/to/bin/sentry-tunnel.js", to compare
// a commit against its parent), and the pass-through takes an environment too
// ({"passthrough":true,"env":{"PASSTHROUGH_HANDLER":"new"}}). `"envelope":"foreign"` loads a variant with
// the same envelope for a DSN it does not forward to, so it answers 403 (the refusal flood's cost).
// `"script": "/path/to/peer.js"` runs any Node program as a variant, started as the floor is
// (`node SCRIPT PORT UPSTREAM_URL DSN`, serving POST /tunnel on 127.0.0.1:PORT): a copy of
// bench/.build/peers/passthrough.js with one thing changed tells what that one thing costs, and
// bench/.build/peers/middleware.js is the tunnel's pipeline embedded in a bare node:http server.
//
// Needs wrk (apt-get install wrk). The first variant is the baseline of the paired ratios. Each variant's
// median CPU per request, req/s and p99 are printed; BENCH_VERBOSE=1 also prints every round (stderr).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROWSER_HEADERS, errorEnvelope } from './.build/envelopes.js';
import { foreignDsn } from './.build/flood.js';
import { runLoad } from './.build/load.js';
import { cpuSeconds } from './.build/memory.js';
import { CLI, benchUpstream, envelopeUrl, freePort, startPeer, tunnelConfig } from './.build/peers.js';
import { installCleanup, startProcess, stopProcess, waitForPort } from './.build/processes.js';
import { median } from './.build/report.js';
import { FakeUpstream } from './.build/upstream-control.js';

installCleanup(30 * 60_000);
const variants = JSON.parse(process.argv[2] ?? '[{"name":"default"},{"name":"pass-through","passthrough":true}]');
const rounds = Number(process.argv[3] ?? 8);
const durationS = Number(process.argv[4] ?? 4);
const dir = mkdtempSync(join(tmpdir(), 'sentry-tunnel-ab-'));
const fake = await FakeUpstream.start();
const upstream = benchUpstream(fake.port);
const envelope = errorEnvelope(upstream.dsn);
const foreign = errorEnvelope(foreignDsn(upstream));

/** A variant: the bench's tunnel config with `config` merged into its sections, a script started as the floor is, or the pass-through. */
async function start(variant) {
  if (variant.passthrough) {
    const peer = await startPeer('pass-through', dir, upstream, undefined, variant.env);
    return { pid: peer.pids[0], url: peer.url, stop: () => peer.stop() };
  }
  const port = await freePort();
  let args;
  if (variant.script) args = [variant.script, String(port), envelopeUrl(upstream), upstream.dsn];
  else {
    const config = tunnelConfig(port, upstream);
    for (const [section, values] of Object.entries(variant.config ?? {})) config[section] = { ...config[section], ...values };
    const file = join(dir, `${variant.name}.json`);
    writeFileSync(file, JSON.stringify(config));
    args = [variant.cli ?? CLI, 'serve', '--config', file];
  }
  const child = startProcess(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...variant.env } }, 'peer');
  await waitForPort(port, child);
  return { pid: child.pid, url: `http://127.0.0.1:${port}/tunnel`, stop: () => stopProcess(child) };
}

const procs = [];
for (const variant of variants) procs.push({ ...variant, ...(await start(variant)), cpu: [], rps: [], p99: [] });
const load = (p, seconds) => runLoad('wrk', { url: p.url, body: (p.envelope === 'foreign' ? foreign : envelope).body, headers: BROWSER_HEADERS, connections: 50, durationS: seconds }, dir);
for (const p of procs) await load(p, 8); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const p of round % 2 ? [...procs].reverse() : procs) {
    await load(p, 1);
    const before = cpuSeconds(p.pid);
    const result = await load(p, durationS);
    p.cpu.push(((cpuSeconds(p.pid) - before) * 1e6) / result.requests);
    p.rps.push(result.rps);
    p.p99.push(result.p99Ms);
    if (process.env.BENCH_VERBOSE) console.error(`round ${round + 1} ${p.name}: ${p.cpu.at(-1).toFixed(1)} µs/req, ${result.rps.toFixed(0)} req/s`);
  }
}
const [base] = procs;
const range = (values, digits) => `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
for (const p of procs) {
  const ratios = p.cpu.map((cpu, i) => cpu / base.cpu[i]);
  console.log(
    `${p.name.padEnd(16)} CPU µs/req median ${median(p.cpu).toFixed(0)} (${range(p.cpu, 0)})  rps ${median(p.rps).toFixed(0)}  p99 ${median(p.p99).toFixed(2)} ms  ` +
      `÷${base.name} paired median ${median(ratios).toFixed(3)} (${range(ratios, 2)})`,
  );
}
for (const p of procs) await p.stop();
process.exit(0);
