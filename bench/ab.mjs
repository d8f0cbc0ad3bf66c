// Paired A/B of sentry-tunnel variants: each variant is its own `serve` process (a config overlay
// and/or environment), all loaded in alternating short rounds by wrk at 50 connections with the 2 KB
// envelope, CPU per request read from /proc. Pairing rounds makes a 2-5 % difference visible on a
// machine whose speed drifts by 2x; run an A/A pair first to see the resolution.
//
//   npm run bench:ab -- '[{"name":"default"},{"name":"no-metrics","config":{"metrics":{"enabled":false}}},
//                         {"name":"pass-through","passthrough":true}]' [rounds=8] [seconds=4]
//
// Needs wrk (apt-get install wrk). The first variant is the baseline of the paired ratios.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeUpstream } from './.build/upstream-control.js';
import { freePort, CLI, tunnelConfig } from './.build/peers.js';
import { startProcess, waitForPort, stopProcess, installCleanup } from './.build/processes.js';
import { runLoad } from './.build/load.js';
import { errorEnvelope, BROWSER_HEADERS } from './.build/envelopes.js';
installCleanup(30 * 60_000);
const variants = JSON.parse(process.argv[2] ?? '[{"name":"default"},{"name":"pass-through","passthrough":true}]');
const rounds = Number(process.argv[3] ?? 8), dur = Number(process.argv[4] ?? 4);
const dir = mkdtempSync(join(tmpdir(), 'ab-'));
const up = await FakeUpstream.start();
const projectId = '1';
const upstream = { port: up.port, projectId, dsn: `http://0123456789abcdef0123456789abcdef@127.0.0.1:${up.port}/${projectId}` };
const env = errorEnvelope(upstream.dsn);
const procs = [];
for (const v of variants) {
  const port = await freePort();
  const cfg = tunnelConfig(port, upstream);
  for (const [k, val] of Object.entries(v.config ?? {})) cfg[k] = { ...(cfg[k] ?? {}), ...val };
  const file = join(dir, `${v.name}.json`); writeFileSync(file, JSON.stringify(cfg));
  const child = v.passthrough
    ? startProcess(process.execPath, [join(import.meta.dirname, '.build', 'peers', 'passthrough.js'), String(port), `http://127.0.0.1:${up.port}/api/${projectId}/envelope/`], { stdio: 'ignore' })
    : startProcess(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...(v.env ?? {}) } });
  await waitForPort(port, child);
  procs.push({ ...v, child, url: `http://127.0.0.1:${port}/tunnel`, cpu: [], rps: [] });
}
const cpuOf = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10_000; }; // µs
const load = (p, d) => runLoad('wrk', { url: p.url, body: env.body, headers: BROWSER_HEADERS, connections: 50, durationS: d }, dir);
for (const p of procs) await load(p, 8); // warm-up
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? [...procs].reverse() : procs;
  for (const p of order) {
    await load(p, 1);
    const c0 = cpuOf(p.child.pid); const res = await load(p, dur); const c1 = cpuOf(p.child.pid);
    p.cpu.push((c1 - c0) / res.requests); p.rps.push(res.rps);
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const base = procs[0];
for (const p of procs) {
  const ratios = p.cpu.map((c, i) => c / base.cpu[i]);
  console.log(`${p.name.padEnd(16)} CPU µs/req median ${med(p.cpu).toFixed(0)} (${Math.min(...p.cpu).toFixed(0)}–${Math.max(...p.cpu).toFixed(0)})  rps ${med(p.rps).toFixed(0)}  ÷${base.name} paired median ${med(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
}
for (const p of procs) await stopProcess(p.child);
process.exit(0);
