// Requests/s and latency under load: every peer measured in the same run, interleaved round by round
// (the order rotates each round) so that a machine that gets busier or quieter affects all of them alike.
import type { BenchEnvelope } from './envelopes.js';
import { BROWSER_HEADERS } from './envelopes.js';
import { type LoadResult, type Loader, runLoad } from './load.js';
import { PeakRss, cpuSeconds } from './memory.js';
import type { BenchOptions } from './options.js';
import type { PeerName, RunningPeer } from './peers.js';
import { sleep } from './processes.js';
import type { FakeUpstream } from './upstream-control.js';

export interface ThroughputSample {
  readonly round: number;
  readonly peer: PeerName | 'upstream alone';
  /** Which envelope was posted. */
  readonly envelope: string;
  readonly load: LoadResult;
  readonly peakRss: number;
  /** CPU time the peer spent per completed request, in microseconds (NaN where unknown). */
  readonly cpuUsPerRequest: number;
  /** The fake upstream's event-loop utilisation and CPU share during the run. */
  readonly upstreamElu: number;
  readonly upstreamCpu: number;
  /** Bodies that arrived upstream different from the one sent. */
  readonly mismatched: number;
}

export interface ThroughputContext {
  readonly options: BenchOptions;
  readonly loader: Loader;
  readonly upstream: FakeUpstream;
  readonly workDir: string;
  readonly log: (line: string) => void;
}

export async function runThroughput(ctx: ThroughputContext, envelope: BenchEnvelope, peers: readonly RunningPeer[]): Promise<ThroughputSample[]> {
  const { options, upstream } = ctx;
  await upstream.expect(envelope);
  const samples: ThroughputSample[] = [];
  const load = (url: string, durationS: number) =>
    runLoad(ctx.loader, { url, body: envelope.body, headers: BROWSER_HEADERS, connections: options.connections, durationS }, ctx.workDir);

  // A freshly started peer runs cold (interpreted code, small heaps) for far longer than a per-run
  // warm-up on a busy machine: give each one a longer warm-up once before the rounds.
  if (options.warmupS > 0) for (const peer of peers) await load(peer.url, Math.max(5, options.warmupS * 2));

  for (let round = 1; round <= options.rounds; round++) {
    const order = peers.map((_, i) => peers[(i + round - 1) % peers.length] as RunningPeer);
    for (const peer of order) {
      if (options.warmupS > 0) await load(peer.url, options.warmupS);
      await sleep(300);
      await upstream.reset();
      const cpuBefore = cpu(peer.pids);
      const peak = new PeakRss(peer.pids);
      const result = await load(peer.url, options.durationS);
      const peakRss = peak.stop();
      const cpuUsPerRequest = ((cpu(peer.pids) - cpuBefore) * 1e6) / result.requests;
      const stats = await upstream.stats();
      samples.push({ round, peer: peer.name, envelope: envelope.name, load: result, peakRss, cpuUsPerRequest, upstreamElu: stats.elu, upstreamCpu: stats.cpu, mismatched: stats.mismatched });
      ctx.log(
        `  ${envelope.name} round ${round}/${options.rounds} ${peer.name.padEnd(13)} ${Math.round(result.rps).toString().padStart(6)} req/s  p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  errors ${result.errors}  CPU ${Math.round(cpuUsPerRequest)} µs/req  upstream ELU ${(stats.elu * 100).toFixed(0)}%, ${stats.connections} connections`,
      );
    }
  }

  // The ceiling: the fake upstream loaded directly. If it serves far more than any peer, it was not what limited them.
  const direct = `${upstream.origin}/api/2/envelope/`;
  if (options.warmupS > 0) await load(direct, options.warmupS);
  await upstream.reset();
  const result = await load(direct, options.durationS);
  const stats = await upstream.stats();
  samples.push({ round: 1, peer: 'upstream alone', envelope: envelope.name, load: result, peakRss: 0, cpuUsPerRequest: Number.NaN, upstreamElu: stats.elu, upstreamCpu: stats.cpu, mismatched: stats.mismatched });
  ctx.log(`  ${envelope.name} fake upstream alone ${Math.round(result.rps)} req/s  ELU ${(stats.elu * 100).toFixed(0)}%`);
  return samples;
}

function cpu(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? Number.NaN), 0);
}
