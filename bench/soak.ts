// The leak check: sentry-tunnel under steady load for two runs in a row; resident memory after the
// second run (once idle) should be within 10 % of after the first.
import { BROWSER_HEADERS, type BenchEnvelope } from './envelopes.js';
import { type LoadResult, type Loader, runLoad } from './load.js';
import { rssBytes } from './memory.js';
import type { RunningPeer } from './peers.js';
import { sleep } from './processes.js';

export interface SoakResult {
  readonly durationS: number;
  readonly idleRss: number;
  readonly runs: readonly { readonly load: LoadResult; readonly rssAfter: number }[];
}

export async function runSoak(loader: Loader, peer: RunningPeer, envelope: BenchEnvelope, connections: number, durationS: number, workDir: string, log: (line: string) => void): Promise<SoakResult> {
  const rss = () => peer.pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
  const idleRss = rss();
  const runs = [];
  for (let run = 1; run <= 2; run++) {
    const load = await runLoad(loader, { url: peer.url, body: envelope.body, headers: BROWSER_HEADERS, connections, durationS }, workDir);
    await sleep(2_000);
    const rssAfter = rss();
    runs.push({ load, rssAfter });
    log(`  soak run ${run}: ${Math.round(load.rps)} req/s, ${load.requests} requests, errors ${load.errors}, RSS after ${(rssAfter / 1048576).toFixed(1)} MiB`);
  }
  return { durationS, idleRss, runs };
}
