// Start-up cost of the real CLI: `--version` and `check-config` wall time (spawn to exit), and `serve`
// from spawn to the first envelope forwarded and answered 200.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { BenchEnvelope } from './envelopes.js';
import { BROWSER_HEADERS } from './envelopes.js';
import { CLI, REPO_DIR, type Upstream, freePort, tunnelConfig } from './peers.js';
import { sleep, startProcess, stopProcess } from './processes.js';

export interface StartupResult {
  readonly label: string;
  readonly timesMs: readonly number[];
}

function timeCommand(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_DIR, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const elapsed = performance.now() - started;
      if (code === 0) resolve(elapsed);
      else reject(new Error(`sentry-tunnel ${args.join(' ')} exited ${code}`));
    });
  });
}

function post(port: number, envelope: BenchEnvelope): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/tunnel', method: 'POST', agent: false, headers: { ...BROWSER_HEADERS, 'content-length': envelope.body.length } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.end(envelope.body);
  });
}

async function serveToFirstRequest(dir: string, upstream: Upstream, envelope: BenchEnvelope): Promise<number> {
  const port = await freePort();
  const config = join(dir, 'startup.config.json');
  writeFileSync(config, JSON.stringify(tunnelConfig(port, upstream)));
  const started = performance.now();
  const child = startProcess(process.execPath, [CLI, 'serve', '--config', config]);
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const status = await post(port, envelope).catch(() => 0);
      if (status === 200) return performance.now() - started;
      if (status !== 0) throw new Error(`the first request was answered ${status}`);
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('serve never accepted a request');
      await sleep(2);
    }
  } finally {
    await stopProcess(child);
  }
}

export async function runStartup(dir: string, upstream: Upstream, envelope: BenchEnvelope, runs: number, log: (line: string) => void): Promise<StartupResult[]> {
  const figures: [string, () => Promise<number>][] = [
    ['`sentry-tunnel --version`', () => timeCommand(['--version'])],
    ['`sentry-tunnel check-config` (example)', () => timeCommand(['check-config', '--config', join(REPO_DIR, 'sentry-tunnel.config.example.json')])],
    ['`sentry-tunnel serve` → first request forwarded', () => serveToFirstRequest(dir, upstream, envelope)],
  ];
  const results: StartupResult[] = figures.map(([label]) => ({ label, timesMs: [] as number[] }));
  // Interleaved like the throughput rounds, after one untimed run each to warm the file cache.
  for (const [, measure] of figures) await measure();
  for (let run = 0; run < runs; run++) {
    for (const [index, [, measure]] of figures.entries()) (results[index]?.timesMs as number[]).push(await measure());
  }
  for (const result of results) log(`  ${result.label}: ${result.timesMs.map((t) => Math.round(t)).join(', ')} ms`);
  return results;
}
