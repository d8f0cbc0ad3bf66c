// Shutdown under load, as an orchestrator does it: 100 clients posting, SIGTERM mid-way. Readiness
// turns 503 at once while the listener keeps serving for server.drainDelayMs, so no request that
// reached the tunnel is reset, and every envelope answered 200 arrived at Sentry.
import { request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { REPO } from '../helpers/run-cli.js';
import { listeningUrl, runCli } from '../helpers/spawn-cli.js';

let sentry: FakeSentry;

beforeAll(async () => {
  sentry = await FakeSentry.start();
});

afterAll(async () => {
  await sentry.close();
});

type Outcome = { startedAt: number; status: number; id: string | undefined } | { startedAt: number; error: string };

/** One POST on a connection of its own (no keep-alive), as 100 separate clients would. */
function post(url: string, body: Buffer): Promise<Outcome> {
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ startedAt, error: error.code ?? error.message }));
      res.on('end', () => resolve({ startedAt, status: res.statusCode ?? 0, id: (JSON.parse(text) as { id?: string }).id }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ startedAt, error: error.code ?? error.message }));
    req.end(body);
  });
}

async function readyzStatus(origin: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${origin}/readyz`, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

it('100 clients, SIGTERM mid-way: readiness 503 during the drain delay, zero resets, every 200 delivered', async () => {
  sentry.reply = { delayMs: 30 };
  const cli = runCli(['serve', '--dsn', sentry.dsn('2'), '--port', '0'], { cwd: REPO, env: { SENTRY_TUNNEL_DRAIN_DELAY_MS: '1500' } });
  const url = listeningUrl(await cli.waitForLine(/listening on/));
  const origin = new URL(url).origin;
  const outcomes: Promise<Outcome>[] = [];
  let notReadyAt = Number.POSITIVE_INFINITY;
  // 100 clients over ~500 ms; SIGTERM after the 50th.
  for (let client = 0; client < 100; client++) {
    outcomes.push(post(url, errorEnvelope(sentry.dsn('2'))));
    if (client === 49) {
      cli.child.kill('SIGTERM');
      // Bounded: readiness must flip within 2 s of the signal (a closed listener reads as 0).
      for (let probe = 0; probe < 400 && (await readyzStatus(origin)) === 200; probe++) await new Promise((resolve) => setTimeout(resolve, 5));
      notReadyAt = performance.now();
      expect(await readyzStatus(origin)).toBe(503);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const results = await Promise.all(outcomes);
  expect(await cli.exited()).toBe(0);

  const sentBeforeNotReady = results.filter((result) => result.startedAt < notReadyAt);
  expect(sentBeforeNotReady.length).toBeGreaterThanOrEqual(50);
  expect(sentBeforeNotReady.filter((result) => 'error' in result)).toEqual([]);
  // Within the drain delay the listener still serves: the clients after readiness turned 503 are answered too.
  expect(results.filter((result) => 'error' in result)).toEqual([]);
  const accepted = results.filter((result): result is Extract<Outcome, { status: number }> => 'status' in result && result.status === 200);
  expect(accepted).toHaveLength(100);
  const arrived = new Set(sentry.requests.map((arrival) => (JSON.parse(arrival.body.toString().split('\n')[0] ?? '{}') as { event_id?: string }).event_id));
  expect(accepted.filter((result) => !arrived.has(result.id))).toEqual([]);
}, 30_000);
