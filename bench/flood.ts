// Refusal floods: sentry-tunnel answering envelopes for a foreign DSN (403) and a client over its
// per-client budget (429), interleaved round by round with the floor forwarding 2 KB envelopes, so
// each refusal rate is read against the floor's forwarding rate from the same stretch of time; and the
// floor refusing the foreign DSN itself, the least a refusal after the body can cost on the machine.
import { BROWSER_HEADERS, type BenchEnvelope, errorEnvelope } from './envelopes.js';
import { type LoadResult, runLoad } from './load.js';
import { cpuSeconds } from './memory.js';
import { type RunningPeer, type Upstream, startPeer } from './peers.js';
import { sleep } from './processes.js';
import type { FloodSample } from './report.js';
import type { ThroughputContext } from './throughput.js';

/** A DSN of a project the tunnel does not forward to: same host, another key and project. */
export function foreignDsn(upstream: Upstream): string {
  return `http://fedcba9876543210fedcba9876543210@127.0.0.1:${upstream.port}/99`;
}

export async function runFlood(ctx: ThroughputContext, upstream: Upstream, small: BenchEnvelope, tunnel: RunningPeer, floor: RunningPeer): Promise<FloodSample[]> {
  const { options } = ctx;
  const budget = await startPeer('tunnel-budget', ctx.workDir, upstream, options.cpuProf);
  try {
    await ctx.upstream.expect(small);
    const foreign = errorEnvelope(foreignDsn(upstream));
    const runs: { kind: FloodSample['kind']; peer: RunningPeer; envelope: BenchEnvelope }[] = [
      { kind: 'forward', peer: floor, envelope: small },
      { kind: 'floor-403', peer: floor, envelope: foreign },
      { kind: '403', peer: tunnel, envelope: foreign },
      { kind: '429', peer: budget, envelope: small },
    ];
    const load = (run: (typeof runs)[number], durationS: number): Promise<LoadResult> =>
      runLoad(ctx.loader, { url: run.peer.url, body: run.envelope.body, headers: BROWSER_HEADERS, connections: options.connections, durationS }, ctx.workDir);
    if (options.warmupS > 0) for (const run of runs) await load(run, Math.max(5, options.warmupS * 2));
    const samples: FloodSample[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      for (const run of runs.map((_, i) => runs[(i + round - 1) % runs.length] as (typeof runs)[number])) {
        if (options.warmupS > 0) await load(run, options.warmupS);
        await sleep(300);
        const pid = run.peer.pids[0] as number;
        const before = cpuSeconds(pid) ?? Number.NaN;
        const result = await load(run, options.durationS);
        const cpuUsPerRequest = (((cpuSeconds(pid) ?? Number.NaN) - before) * 1e6) / result.requests;
        // wrk counts every non-2xx answer as an error: a refusal flood must be all "errors", a forward none.
        const expected = run.kind === 'forward' ? result.errors === 0 : result.errors >= result.requests;
        samples.push({ round, kind: run.kind, load: result, cpuUsPerRequest, expected });
        ctx.log(
          `  flood round ${round}/${options.rounds} ${run.kind.padEnd(9)} ${Math.round(result.rps).toString().padStart(6)} req/s  p99 ${result.p99Ms} ms  non-2xx ${result.errors}/${result.requests}  CPU ${Math.round(cpuUsPerRequest)} µs/req`,
        );
      }
    }
    return samples;
  } finally {
    await budget.stop();
  }
}
