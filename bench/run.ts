// `npm run bench`: starts the fake upstream and every peer in their own processes, runs the chosen
// scenarios, prints the Markdown report, and stops everything it started (also on Ctrl-C or an error).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { type BigResult, runBig } from './big.js';
import { runFlood } from './flood.js';
import { type BenchEnvelope, attachmentEnvelope, errorEnvelope, transactionEnvelope } from './envelopes.js';
import type { Loader } from './load.js';
import { type BenchOptions, USAGE, parseOptions } from './options.js';
import { MiB, type RunningPeer, benchUpstream, hasBinary, startPeer } from './peers.js';
import { installCleanup, killAll, pinning } from './processes.js';
import * as report from './report.js';
import { runSoak } from './soak.js';
import { runStartup } from './startup.js';
import { type ThroughputSample, runThroughput } from './throughput.js';
import { FakeUpstream } from './upstream-control.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

function machine(loader: Loader, nginx: boolean): string {
  const cpu = cpus();
  // `wrk -v` and `nginx -v` print to stderr (and wrk exits 1).
  const version = (command: string, args: string[]) => {
    const result = spawnSync(command, args, { encoding: 'utf8' });
    return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  };
  const parts = [
    `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}`,
    `${Math.round(totalmem() / 1024 ** 3)} GiB`,
    `${process.platform} ${release()}`,
    `Node ${process.version}`,
    `load generator ${loader === 'wrk' ? version('wrk', ['-v']).split(' [')[0] : `autocannon ${autocannonVersion()}`}`,
    nginx ? version('nginx', ['-v']).replace('nginx version: ', '') : 'nginx not installed',
    pinning ? 'peers pinned to CPU 1, load generator and fake upstream to CPU 0' : 'not pinned',
    `load average at start ${loadavg().map((n) => n.toFixed(1)).join(' ')}`,
  ];
  return parts.join(' · ');
}

function autocannonVersion(): string {
  return (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version;
}

async function main(options: BenchOptions): Promise<number> {
  const started = Date.now();
  const loader: Loader = options.loader === 'auto' ? (hasBinary('wrk') ? 'wrk' : 'autocannon') : options.loader;
  if (loader === 'wrk' && !hasBinary('wrk')) throw new Error('--loader wrk, but wrk is not installed');
  const nginx = hasBinary('nginx');
  const peerNames = options.peers.filter((name) => {
    if (name !== 'nginx' || nginx) return true;
    if (options.peers.length < 4) log('nginx is not installed: skipping the nginx peer');
    return false;
  });
  const workDir = mkdtempSync(join(tmpdir(), 'sentry-tunnel-bench-'));
  const sections: string[] = [];
  const targets: report.Target[] = [];
  const peers: RunningPeer[] = [];
  try {
    const upstreamProcess = await FakeUpstream.start();
    const upstream = benchUpstream(upstreamProcess.port);
    log(`sentry-tunnel bench: ${machine(loader, nginx)}`);
    log(`work directory ${workDir}; fake upstream on 127.0.0.1:${upstream.port}`);
    const small = errorEnvelope(upstream.dsn);

    if (options.scenarios.has('startup')) {
      log('start-up:');
      const results = await runStartup(workDir, upstream, small, options.startupRuns, log);
      sections.push(report.startupTable(results));
      targets.push(...report.startupTargets(results));
    }

    for (const name of peerNames) peers.push(await startPeer(name, workDir, upstream, options.cpuProf));
    log(`peers: ${peers.map((p) => `${p.name} ${p.url}`).join(', ')}`);

    const ctx = { options, loader, upstream: upstreamProcess, workDir, log };
    const ceilings: ThroughputSample[] = [];
    const measure = async (title: string, envelope: BenchEnvelope, with1: readonly RunningPeer[], connections = options.connections) => {
      log(`${title} (${envelope.body.length} B), ${connections} connection${connections === 1 ? '' : 's'}:`);
      const samples = await runThroughput({ ...ctx, options: { ...options, connections } }, envelope, with1);
      sections.push(report.throughputTable({ title: `${title} (${envelope.body.length} B)`, samples }, connections, options.durationS, loader));
      // The fake upstream's ceiling is judged at the main load only.
      if (connections === options.connections) ceilings.push(...samples);
      return samples;
    };
    // The log-every-request variant is measured at 2 KB only (its bar is there).
    const main = peers.filter((p) => p.name !== 'tunnel-log-all');
    const pair = peers.filter((p) => p.name === 'sentry-tunnel' || p.name === 'pass-through');
    if (options.scenarios.has('2kb')) targets.push(...report.throughputTargets(await measure('2 KB browser error envelope', small, peers)));
    if (options.scenarios.has('20kb')) targets.push(...report.transactionTargets(await measure('20 KB transaction envelope', transactionEnvelope(upstream.dsn), main)));
    if (options.scenarios.has('1conn') && pair.length === 2) targets.push(...report.oneConnectionTargets(await measure('2 KB browser error envelope', small, pair, 1)));
    if (ceilings.length > 0) sections.push(upstreamVerdict(ceilings));

    const floor = peers.find((p) => p.name === 'pass-through');
    const tunnelPeer = peers.find((p) => p.name === 'sentry-tunnel');
    if (options.scenarios.has('flood') && floor && tunnelPeer) {
      log('refusal floods (403 foreign DSN, 429 over the per-client budget) against the floor forwarding:');
      const flood = await runFlood(ctx, upstream, small, tunnelPeer, floor);
      sections.push(report.floodTable(flood, options.connections, options.durationS, loader));
      targets.push(...report.floodTargets(flood));
    }

    if (options.scenarios.has('big')) {
      const results: BigResult[] = [];
      for (const envelope of [attachmentEnvelope(upstream.dsn, '5 MiB attachment', 5 * MiB), attachmentEnvelope(upstream.dsn, '50 MiB attachment', 50 * MiB)]) {
        log(`${envelope.name}:`);
        results.push(...(await runBig(upstreamProcess, envelope, peers, options.bigRepeats, log)));
      }
      sections.push(report.bigTable(results));
      targets.push(...report.bigTargets(results));
    }

    const tunnel = peers.find((p) => p.name === 'sentry-tunnel');
    if (options.scenarios.has('soak') && options.soakS > 0 && tunnel) {
      log(`soak (${options.soakS} s × 2):`);
      const soak = await runSoak(loader, tunnel, small, options.connections, options.soakS, workDir, log);
      sections.push(report.soakTable(soak));
      targets.push(...report.soakTargets(soak));
    }

    const header = [
      `## Results — ${new Date().toISOString().slice(0, 10)}`,
      '',
      `Machine: ${machine(loader, nginx)}; load average at end ${loadavg().map((n) => n.toFixed(1)).join(' ')}. Run took ${Math.round((Date.now() - started) / 1000)} s.`,
    ].join('\n');
    const markdown = [header, ...(targets.length ? [report.targetsTable(targets)] : []), ...sections].join('\n\n');
    process.stdout.write(`\n${markdown}\n`);
    if (options.out) writeFileSync(options.out, `${markdown}\n`);
    return 0;
  } finally {
    await Promise.all(peers.map((peer) => peer.stop()));
    killAll();
    if (options.keep) log(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

/** Says, per envelope, whether the fake upstream could have limited any peer: its busiest moment next to its ceiling. */
function upstreamVerdict(samples: readonly ThroughputSample[]): string {
  const lines = ['### The fake upstream', ''];
  for (const envelope of new Set(samples.map((s) => s.envelope))) {
    const mine = samples.filter((s) => s.envelope === envelope);
    const peers = mine.filter((s) => s.peer !== 'upstream alone');
    const busiest = peers.reduce((max, s) => Math.max(max, s.upstreamElu), 0);
    const fastest = peers.reduce((max, s) => (s.load.rps > max.load.rps ? s : max));
    const ceiling = mine.find((s) => s.peer === 'upstream alone')?.load.rps ?? Number.NaN;
    // A peer that got within 80 % of what the fake answers alone may have been held back by it.
    const near = [...new Set(peers.filter((s) => s.load.rps > ceiling * 0.8).map((s) => s.peer))];
    const verdict =
      near.length === 0
        ? 'not the bottleneck.'
        : `**${near.join(', ')} came within 80 % of that: read ${near.length > 1 ? 'their' : 'its'} figures as lower bounds**; the other peers stayed well below it.`;
    lines.push(
      `- ${envelope}: at most ${Math.round(busiest * 100)} % event-loop utilisation while serving a peer; loaded directly it answered ${Math.round(ceiling).toLocaleString('en-US')} req/s, the fastest peer (${fastest.peer}) ${Math.round(fastest.load.rps).toLocaleString('en-US')} req/s — ${verdict}`,
    );
  }
  return lines.join('\n');
}

let parsed: BenchOptions | 'help';
try {
  parsed = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (parsed === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else {
  // A generous bound on the whole run: rounds × peers × (warm-up + measurement) + soak + the rest.
  const o = parsed;
  const budgetS = 2 * (o.rounds * 5 * 4 * (o.warmupS + o.durationS + 3) + 2 * o.soakS + 300);
  installCleanup(budgetS * 1000);
  main(o).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
      killAll();
      process.exit(1);
    },
  );
}
