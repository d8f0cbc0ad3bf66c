// log.requests: the default "summary" writes a line per request an operator must act on (5xx,
// spooled) and a summary of the rest per interval; "all" a line per request; "off" none.
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/validate.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { waitForLog } from '../helpers/log-lines.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let sentry: FakeSentry | undefined;
let tunnel: TestTunnel | undefined;

afterEach(async () => {
  await tunnel?.shutdown();
  await sentry?.close();
  tunnel = undefined;
  sentry = undefined;
});

async function traffic(t: TestTunnel, s: FakeSentry): Promise<void> {
  for (let i = 0; i < 3; i++) expect((await t.post(errorEnvelope(s.dsn()))).status).toBe(200);
  expect((await t.post(errorEnvelope('https://abc123@o1.ingest.sentry.io/999'))).status).toBe(403);
  s.reply = { reset: true };
  expect((await t.post(errorEnvelope(s.dsn()))).status).toBe(502);
  s.reply = {};
}

describe('log.requests', () => {
  it('is "summary" by default, every 60 s', () => {
    const config = validateConfig({ projects: { web: { dsn: 'https://abc123@o1.ingest.sentry.io/2' } } });
    expect(config.log).toMatchObject({ requests: 'summary', summaryIntervalMs: 60_000 });
  });

  it('"summary": a line for the 5xx, and one summary line counting the traffic by outcome and code', async () => {
    sentry = await FakeSentry.start();
    tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { requests: 'summary', summaryIntervalMs: 300 } });
    await traffic(tunnel, sentry);
    // Probes and scrapes are not traffic: a kubelet's every-few-seconds probes stay out of the counts.
    const origin = new URL(tunnel.url).origin;
    for (const path of ['/healthz', '/readyz', '/metrics']) expect((await fetch(`${origin}${path}`)).status).toBe(200);
    const [summary] = await waitForLog(tunnel, (line) => line.msg === 'requests');
    expect(summary).toMatchObject({ requests: 5, outcomes: { forwarded: 3, rejected: 1, failed: 1 }, codes: { dsn_not_allowed: 1, upstream_unavailable: 1 } });
    expect(summary?.bytesIn).toBeGreaterThan(0);
    const lines = tunnel.logs().filter((line) => line.msg === 'request');
    expect(lines.map((line) => [line.status, line.code])).toEqual([[502, 'upstream_unavailable']]);
  });

  it('"all": one line per request, 5xx at error', async () => {
    sentry = await FakeSentry.start();
    tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { requests: 'all' } });
    await traffic(tunnel, sentry);
    await waitForLog(tunnel, (line) => line.msg === 'request' && line.status === 502);
    const levels = tunnel.logs().filter((line) => line.msg === 'request').map((line) => [line.status, line.level]);
    expect(levels).toEqual([[200, 30], [200, 30], [200, 30], [403, 30], [502, 50]]);
  });

  it('"off": no request lines and no summary', async () => {
    sentry = await FakeSentry.start();
    tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { requests: 'off', summaryIntervalMs: 100 } });
    await traffic(tunnel, sentry);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(tunnel.logs().filter((line) => line.msg === 'request' || line.msg === 'requests')).toEqual([]);
  });
});
