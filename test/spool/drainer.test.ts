import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry, type FakeReply, type RecordedRequest } from '../helpers/fake-sentry.js';
import { entryFiles, removeTempDirs, tempDir, waitFor } from '../helpers/spool.js';
import { waitForLog } from '../helpers/log-lines.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await removeTempDirs();
});

interface Arrival {
  readonly at: number;
  readonly request: RecordedRequest;
}

/** A fake whose n-th request (1-based) is answered by `plan(n)`; arrival times are kept. */
async function scriptedSentry(plan: (n: number, request: RecordedRequest) => FakeReply): Promise<{ fake: FakeSentry; arrivals: Arrival[] }> {
  const fake = await FakeSentry.start();
  cleanups.push(() => fake.close());
  const arrivals: Arrival[] = [];
  fake.reply = (request) => {
    arrivals.push({ at: Date.now(), request });
    return plan(arrivals.length, request);
  };
  return { fake, arrivals };
}

async function tunnelFor(fake: FakeSentry, spool: NonNullable<ConfigInput['spool']>, projects?: ConfigInput['projects']): Promise<{ tunnel: TestTunnel; dir: string }> {
  const dir = await tempDir();
  const tunnel = await startTestTunnel({ projects: projects ?? { web: { dsn: fake.dsn() } }, spool: { ...spool, dir } });
  cleanups.push(() => tunnel.shutdown());
  return { tunnel, dir };
}

describe('the drainer', () => {
  it('waits out Retry-After even beyond retry.maxMs', async () => {
    // 1: the live request fails; 2: the first re-send is told to come back in 1 s; 3: accepted.
    const { fake, arrivals } = await scriptedSentry((n) => (n === 1 ? { status: 503 } : n === 2 ? { status: 503, headers: { 'retry-after': '1' } } : {}));
    const { tunnel, dir } = await tunnelFor(fake, { retry: { initialMs: 20, maxMs: 50 } });
    const body = errorEnvelope(fake.dsn());
    expect((await tunnel.post(body)).status).toBe(200);
    await waitFor('the re-send after Retry-After', () => arrivals.length >= 3);
    expect((arrivals[2] as Arrival).at - (arrivals[1] as Arrival).at).toBeGreaterThanOrEqual(1_000);
    expect((arrivals[2] as Arrival).request.body.equals(body)).toBe(true);
    await waitFor('the entry to be deleted', async () => (await entryFiles(dir)).length === 0);
  });

  it('honours X-Sentry-Rate-Limits on a 429: the project waits, the envelope is kept and sent afterwards', async () => {
    const { fake, arrivals } = await scriptedSentry((n) =>
      n === 1 ? { status: 502 } : n === 2 ? { status: 429, headers: { 'x-sentry-rate-limits': '1:error:organization:quota' } } : {},
    );
    const { tunnel, dir } = await tunnelFor(fake, { retry: { initialMs: 20, maxMs: 50 } });
    const body = errorEnvelope(fake.dsn());
    expect((await tunnel.post(body)).status).toBe(200);
    await waitFor('the re-send after the rate limit', () => arrivals.length >= 3);
    expect((arrivals[2] as Arrival).at - (arrivals[1] as Arrival).at).toBeGreaterThanOrEqual(1_000);
    expect((arrivals[2] as Arrival).request.body.equals(body)).toBe(true);
    await waitFor('the entry to be deleted', async () => (await entryFiles(dir)).length === 0);
    expect(tunnel.logs().some((line) => line.msg === 'spool: Sentry rate-limits this project; waiting before the next send')).toBe(true);
  });

  it('does not retry an envelope Sentry answers 400: it is deleted with a log line', async () => {
    const { fake, arrivals } = await scriptedSentry((n) => (n === 1 ? { status: 503 } : { status: 400, headers: { 'x-sentry-error': 'invalid envelope' } }));
    const { tunnel, dir } = await tunnelFor(fake, { retry: { initialMs: 20, maxMs: 40 } });
    expect((await tunnel.post(errorEnvelope(fake.dsn()))).status).toBe(200);
    await waitFor('the entry to be deleted', async () => (await entryFiles(dir)).length === 0);
    // Ten times retry.maxMs: a retry would have happened by now.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(arrivals).toHaveLength(2);
    expect(tunnel.logs().find((line) => line.msg === 'spool: Sentry rejected a spooled envelope; deleted')).toMatchObject({
      project: 'web',
      upstreamStatus: 400,
      sentryError: 'invalid envelope',
    });
    expect(tunnel.spool?.counters).toMatchObject({ spooled: 1, rejected: 1, delivered: 0 });
  });

  it('removes envelopes older than spool.maxAgeMs undelivered, with a log line, and counts them', async () => {
    const { fake } = await scriptedSentry(() => ({ status: 503 }));
    const { tunnel, dir } = await tunnelFor(fake, { maxAgeMs: 300, retry: { initialMs: 50, maxMs: 100 } });
    expect((await tunnel.post(errorEnvelope(fake.dsn()))).status).toBe(200);
    expect(await entryFiles(dir)).toHaveLength(1);
    await waitFor('the entry to expire', async () => (await entryFiles(dir)).length === 0);
    // The line is written once the unlink has settled, a moment after the file is gone.
    const [line] = await waitForLog(tunnel, (entry) => entry.msg === 'spool: envelope older than spool.maxAgeMs removed without delivery');
    expect(line).toMatchObject({ level: 40, project: 'web', expired: 1 });
    expect(line?.ageMs as number).toBeGreaterThan(300);
    expect(tunnel.spool?.counters.expired).toBe(1);
    expect(tunnel.spool?.stats()).toEqual({ envelopes: 0, bytes: 0, full: false });
  });

  it('drains a healthy project while another keeps failing', async () => {
    let healthyUp = false;
    const { fake, arrivals } = await scriptedSentry((_n, request) => (request.url.startsWith('/api/3/') && healthyUp ? {} : { status: 503 }));
    const failing = fake.dsn('2');
    const healthy = fake.dsn('3');
    const { tunnel, dir } = await tunnelFor(fake, { retry: { initialMs: 20, maxMs: 60 } }, { failing: { dsn: failing }, healthy: { dsn: healthy } });
    // The failing project's envelopes are the oldest in the spool.
    for (let i = 0; i < 5; i++) expect((await tunnel.post(errorEnvelope(failing, `failing ${i}`))).status).toBe(200);
    const healthyBodies = [];
    for (let i = 0; i < 5; i++) {
      const body = errorEnvelope(healthy, `healthy ${i}`);
      healthyBodies.push(body);
      expect((await tunnel.post(body)).status).toBe(200);
    }
    healthyUp = true;
    await waitFor('the healthy project to drain', async () => (await entryFiles(dir)).every((name) => name.endsWith('.failing.envelope')));
    expect(await entryFiles(dir)).toHaveLength(5);
    const accepted = arrivals.filter((arrival) => arrival.request.url.startsWith('/api/3/')).slice(-5);
    expect(accepted.map((arrival) => arrival.request.body.toString())).toEqual(healthyBodies.map((body) => body.toString()));
  });

  it('re-sends at once when a live request shows Sentry is back, without waiting out the back-off', async () => {
    let up = false;
    const { fake, arrivals } = await scriptedSentry(() => (up ? {} : { status: 503 }));
    const { tunnel, dir } = await tunnelFor(fake, { retry: { initialMs: 15_000, maxMs: 15_000 } });
    const spooled = errorEnvelope(fake.dsn(), 'spooled');
    expect((await tunnel.post(spooled)).status).toBe(200);
    up = true;
    expect((await tunnel.post(errorEnvelope(fake.dsn(), 'live'))).status).toBe(200);
    await waitFor('the spooled envelope to follow the live one', async () => (await entryFiles(dir)).length === 0, 5_000);
    expect(arrivals.at(-1)?.request.body.equals(spooled)).toBe(true);
  });
});
