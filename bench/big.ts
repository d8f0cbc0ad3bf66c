// Big envelopes (5 MiB, 50 MiB with a binary attachment), posted one after another on one connection:
// how long each takes, whether the bytes that reached the upstream are exactly the ones sent, and how
// far the peer's resident memory rose above its idle level while it relayed them.
import { Agent, request } from 'undici';
import { BROWSER_HEADERS, type BenchEnvelope } from './envelopes.js';
import { PeakRss, rssBytes } from './memory.js';
import type { PeerName, RunningPeer } from './peers.js';
import { sleep } from './processes.js';
import type { FakeUpstream } from './upstream-control.js';

export interface BigResult {
  readonly envelope: string;
  readonly bytes: number;
  readonly peer: PeerName;
  /** Status per request, or the transport error's code. */
  readonly outcomes: readonly (number | string)[];
  readonly timesMs: readonly number[];
  /** Every request arrived upstream byte-for-byte (SHA-256), and nothing else did. */
  readonly intact: boolean;
  readonly idleRss: number;
  readonly peakRss: number;
}

export async function runBig(upstream: FakeUpstream, envelope: BenchEnvelope, peers: readonly RunningPeer[], repeats: number, log: (line: string) => void): Promise<BigResult[]> {
  await upstream.expect(envelope);
  const results: BigResult[] = [];
  for (const peer of peers) {
    const agent = new Agent({ connections: 1, headersTimeout: 120_000, bodyTimeout: 120_000 });
    await sleep(1_000);
    const idleRss = peer.pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
    await upstream.reset();
    const peak = new PeakRss(peer.pids, 20);
    const outcomes: (number | string)[] = [];
    const timesMs: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const started = performance.now();
      try {
        const response = await request(peer.url, {
          dispatcher: agent,
          method: 'POST',
          headers: { ...BROWSER_HEADERS, 'content-length': String(envelope.body.length) },
          body: envelope.body,
        });
        await response.body.dump();
        outcomes.push(response.statusCode);
      } catch (error) {
        outcomes.push((error as { code?: string }).code ?? String(error));
      }
      timesMs.push(performance.now() - started);
    }
    const peakRss = peak.stop();
    await agent.close();
    const stats = await upstream.stats();
    const intact = stats.verified === repeats && stats.mismatched === 0;
    results.push({ envelope: envelope.name, bytes: envelope.body.length, peer: peer.name, outcomes, timesMs, intact, idleRss, peakRss });
    log(
      `  ${envelope.name} ${peer.name.padEnd(13)} ${outcomes.join(',')}  ${timesMs.map((t) => Math.round(t)).join(',')} ms  intact ${intact}  RSS +${((peakRss - idleRss) / 1048576).toFixed(1)} MiB`,
    );
  }
  return results;
}
