// /metrics: exact counters after a scripted mix of requests, histogram buckets, gauges, the separate
// metrics port, label hygiene, and the config rules that keep the metrics path from colliding.
import { connect, createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { StartupError } from '../../src/daemon/server.js';
import { allByteValues, envelope, errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { scrape } from '../helpers/scrape.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let fake: FakeSentry;
let tunnel: TestTunnel | undefined;

beforeEach(async () => {
  fake = await FakeSentry.start();
});

afterEach(async () => {
  await tunnel?.shutdown();
  tunnel = undefined;
  await fake.close();
});

async function listenOn(port: number): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { port: (server.address() as { port: number }).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const origin = (t: TestTunnel) => `http://127.0.0.1:${t.address.port}`;

describe('metrics on the main port', () => {
  it('counts Sentry cutting off a streamed envelope as an upstream error, and not the client breaking off', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } } });
    // Over 256 KiB, so the body streams to Sentry while it arrives.
    const big = envelope({ dsn: fake.dsn('2') }, [{ type: 'attachment', payload: allByteValues(4 * 1024), withLength: true }]);
    fake.cutAfterBytes = 64 * 1024;
    expect((await tunnel.post(big)).status).toBe(502);
    fake.cutAfterBytes = undefined;

    // The client breaks off mid-body: its failure, not Sentry's.
    const { port } = tunnel.address;
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST /tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${big.length}\r\n\r\n`);
        socket.write(big.subarray(0, 300 * 1024), () => setTimeout(() => socket.destroy(), 200));
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    const metrics = await scrape(`${origin(tunnel)}/metrics`);
    expect(metrics.value('sentry_tunnel_upstream_errors_total{code="upstream_unavailable"}')).toBe(1);
    expect(metrics.value('sentry_tunnel_upstream_duration_seconds_count{project="web",status="error"}')).toBe(1);
  });

  it('counts a scripted mix of requests exactly', async () => {
    fake.reply = (request) => {
      if (request.url.startsWith('/api/3/')) return { status: 429, headers: { 'retry-after': '60', 'x-sentry-rate-limits': '60:error:organization' } };
      if (request.url.startsWith('/api/7/')) return { delayMs: 1_500 };
      return {};
    };
    tunnel = await startTestTunnel({
      projects: { web: { dsn: fake.dsn('2') }, api: { dsn: fake.dsn('3') }, slow: { dsn: fake.dsn('7') } },
      upstream: { timeoutMs: 300 },
    });
    const bodies = [errorEnvelope(fake.dsn('2')), errorEnvelope(fake.dsn('2')), errorEnvelope(fake.dsn('2'))];
    for (const body of bodies) expect((await tunnel.post(body)).status).toBe(200);
    const limited = errorEnvelope(fake.dsn('3'));
    expect((await tunnel.post(limited)).status).toBe(429);
    const slow = errorEnvelope(fake.dsn('7'));
    expect((await tunnel.post(slow)).status).toBe(504);
    const stranger = errorEnvelope(fake.dsn('999'));
    expect((await tunnel.post(stranger)).status).toBe(403);
    expect((await tunnel.post(errorEnvelope(fake.dsn('2')), { path: '/tunnel/nope' })).status).toBe(404);
    expect((await tunnel.post('x', { path: '/elsewhere' })).status).toBe(404);
    expect((await fetch(tunnel.url)).status).toBe(405);
    const preflight = await fetch(tunnel.url, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect((await fetch(`${origin(tunnel)}/healthz`)).status).toBe(200);
    expect((await fetch(`${origin(tunnel)}/readyz`)).status).toBe(200);

    const metrics = await scrape(`${origin(tunnel)}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(Object.fromEntries(metrics.series('sentry_tunnel_requests_total').map((series) => [series, metrics.value(series)]))).toEqual({
      'sentry_tunnel_requests_total{project="web",status="200",outcome="forwarded"}': 3,
      'sentry_tunnel_requests_total{project="api",status="429",outcome="forwarded"}': 1,
      'sentry_tunnel_requests_total{project="slow",status="504",outcome="failed"}': 1,
      'sentry_tunnel_requests_total{project="unknown",status="403",outcome="rejected"}': 1,
      'sentry_tunnel_requests_total{project="unknown",status="404",outcome="rejected"}': 2,
      'sentry_tunnel_requests_total{project="unknown",status="405",outcome="rejected"}': 1,
      'sentry_tunnel_requests_total{project="unknown",status="204",outcome="none"}': 1,
    });
    expect(Object.fromEntries(metrics.series('sentry_tunnel_rejections_total').map((series) => [series, metrics.value(series)]))).toEqual({
      'sentry_tunnel_rejections_total{code="upstream_timeout"}': 1,
      'sentry_tunnel_rejections_total{code="dsn_not_allowed"}': 1,
      'sentry_tunnel_rejections_total{code="unknown_project"}': 1,
      'sentry_tunnel_rejections_total{code="not_found"}': 1,
      'sentry_tunnel_rejections_total{code="method_not_allowed"}': 1,
    });
    expect(metrics.series('sentry_tunnel_upstream_errors_total')).toEqual(['sentry_tunnel_upstream_errors_total{code="upstream_timeout"}']);
    expect(metrics.value('sentry_tunnel_upstream_errors_total{code="upstream_timeout"}')).toBe(1);

    // Histograms: every bucket exposed, counts and sums exact.
    const measured = [...bodies, limited, slow, stranger];
    expect(metrics.value('sentry_tunnel_envelope_bytes_count')).toBe(measured.length);
    expect(metrics.value('sentry_tunnel_envelope_bytes_sum')).toBe(measured.reduce((sum, body) => sum + body.length, 0));
    for (const le of ['256', '1024', '4096', '16384', '65536', '262144', '1048576', '4194304', '16777216', '67108864']) {
      expect(metrics.value(`sentry_tunnel_envelope_bytes_bucket{le="${le}"}`)).toBe(le === '256' ? measured.filter((body) => body.length <= 256).length : measured.length);
    }
    expect(metrics.value('sentry_tunnel_envelope_bytes_bucket{le="+Inf"}')).toBe(measured.length);
    expect(metrics.value('sentry_tunnel_upstream_duration_seconds_count{project="web",status="200"}')).toBe(3);
    expect(metrics.value('sentry_tunnel_upstream_duration_seconds_count{project="api",status="429"}')).toBe(1);
    expect(metrics.value('sentry_tunnel_upstream_duration_seconds_count{project="slow",status="error"}')).toBe(1);
    expect(metrics.value('sentry_tunnel_upstream_duration_seconds_bucket{le="0.25",project="slow",status="error"}')).toBe(0);
    expect(metrics.value('sentry_tunnel_upstream_duration_seconds_bucket{le="+Inf",project="slow",status="error"}')).toBe(1);
    for (const le of ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '+Inf']) {
      expect(metrics.series('sentry_tunnel_upstream_duration_seconds_bucket')).toContain(`sentry_tunnel_upstream_duration_seconds_bucket{le="${le}",project="web",status="200"}`);
    }

    expect(metrics.value('sentry_tunnel_in_flight')).toBe(0);
    expect(metrics.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(metrics.series('nodejs_eventloop_lag_seconds')).toHaveLength(1);
    // Low cardinality: no DSN key, no client address anywhere in the exposition.
    expect(metrics.text).not.toContain('abc123def456');
    expect(metrics.text).not.toContain('127.0.0.1');
  });

  it('counts malformed HTTP, answered before the pipeline, by its code', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } } });
    const socket = connect(tunnel.address.port, '127.0.0.1');
    let raw = '';
    socket.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    await new Promise<void>((resolve) => socket.on('close', () => resolve()).write('NOT HTTP AT ALL\r\n\r\n'));
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    const metrics = await scrape(`${origin(tunnel)}/metrics`);
    expect(metrics.value('sentry_tunnel_rejections_total{code="bad_request"}')).toBe(1);
    expect(metrics.series('sentry_tunnel_requests_total')).toEqual([]);
  });

  it('shows requests in flight while Sentry is slow, not counting the scrape itself', async () => {
    fake.reply = { delayMs: 400 };
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } } });
    const pending = tunnel.post(errorEnvelope(fake.dsn('2')));
    await fake.waitForRequests(1);
    expect((await scrape(`${origin(tunnel)}/metrics`)).value('sentry_tunnel_in_flight')).toBe(1);
    expect((await pending).status).toBe(200);
    expect((await scrape(`${origin(tunnel)}/metrics`)).value('sentry_tunnel_in_flight')).toBe(0);
  });

  it('counts rate limits and dropped items from the request record, clamping unknown types and categories', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } } });
    const base = { reqId: 'x', method: 'POST', path: '/tunnel', bytesIn: 10, durationMs: 1 };
    tunnel.metrics?.observe({ ...base, status: 429, outcome: 'rate_limited', code: 'rate_limited', project: 'web', rateLimit: { reason: 'sentry', category: 'error' } });
    tunnel.metrics?.observe({ ...base, status: 429, outcome: 'rate_limited', project: 'web', rateLimit: { reason: 'client' } });
    tunnel.metrics?.observe({ ...base, status: 429, outcome: 'rate_limited', project: 'web', rateLimit: { reason: 'sentry', category: 'made-up-by-a-client' } });
    tunnel.metrics?.observe({
      ...base,
      status: 200,
      outcome: 'forwarded',
      project: 'web',
      dropped: [
        { reason: 'drop-localhost', type: 'event' },
        { reason: 'drop-localhost', type: 'event' },
        { reason: 'no-replays', type: 'replay_recording' },
        { reason: 'no-replays', type: 'x'.repeat(100) },
      ],
    });
    const metrics = await scrape(`${origin(tunnel)}/metrics`);
    expect(metrics.value('sentry_tunnel_rate_limited_total{reason="sentry",category="error"}')).toBe(1);
    expect(metrics.value('sentry_tunnel_rate_limited_total{reason="client",category=""}')).toBe(1);
    expect(metrics.value('sentry_tunnel_rate_limited_total{reason="sentry",category="other"}')).toBe(1);
    expect(metrics.value('sentry_tunnel_items_dropped_total{reason="drop-localhost",type="event"}')).toBe(2);
    expect(metrics.value('sentry_tunnel_items_dropped_total{reason="no-replays",type="replay_recording"}')).toBe(1);
    expect(metrics.value('sentry_tunnel_items_dropped_total{reason="no-replays",type="other"}')).toBe(1);
    expect(metrics.value('sentry_tunnel_requests_total{project="web",status="429",outcome="rate_limited"}')).toBe(3);
    expect(metrics.text).not.toContain('made-up-by-a-client');
  });

  it('exposes spool and queue gauges once those features report to it', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } } });
    let envelopes = 3;
    tunnel.metrics?.watchSpool({ stats: () => ({ envelopes, bytes: 4096 }) });
    tunnel.metrics?.watchQueue({ queued: () => 5 });
    let metrics = await scrape(`${origin(tunnel)}/metrics`);
    expect(metrics.value('sentry_tunnel_spool_envelopes')).toBe(3);
    expect(metrics.value('sentry_tunnel_spool_bytes')).toBe(4096);
    expect(metrics.value('sentry_tunnel_queue_length')).toBe(5);
    envelopes = 0;
    metrics = await scrape(`${origin(tunnel)}/metrics`);
    expect(metrics.value('sentry_tunnel_spool_envelopes')).toBe(0);
  });

  it('answers only GET and HEAD on the metrics path', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } } });
    const post = await fetch(`${origin(tunnel)}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toMatchObject({ code: 'method_not_allowed' });
    const head = await fetch(`${origin(tunnel)}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('serves a configured metrics.path and nothing at /metrics then', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } }, metrics: { path: '/internal/prometheus' } });
    expect(tunnel.metricsUrl).toBe(`${origin(tunnel)}/internal/prometheus`);
    expect((await scrape(`${origin(tunnel)}/internal/prometheus`)).value('sentry_tunnel_in_flight')).toBe(0);
    const old = await fetch(`${origin(tunnel)}/metrics`);
    expect(old.status).toBe(404);
    expect(await old.json()).toMatchObject({ code: 'not_found' });
  });

  it('serves nothing when metrics.enabled is false', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } }, metrics: { enabled: false } });
    expect(tunnel.metrics).toBeUndefined();
    expect(tunnel.metricsUrl).toBeUndefined();
    const response = await fetch(`${origin(tunnel)}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: 'not_found' });
    expect((await tunnel.post(errorEnvelope(fake.dsn('2')))).status).toBe(200);
  });
});

describe('metrics on their own port', () => {
  it('serves /metrics only on metrics.port, on the same host, until shutdown', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } }, metrics: { port: 0 } });
    const metricsUrl = new URL(tunnel.metricsUrl ?? '');
    expect(metricsUrl.hostname).toBe('127.0.0.1');
    expect(metricsUrl.port).not.toBe(String(tunnel.address.port));
    expect(metricsUrl.pathname).toBe('/metrics');

    expect((await tunnel.post(errorEnvelope(fake.dsn('2')))).status).toBe(200);
    const onMain = await fetch(`${origin(tunnel)}/metrics`);
    expect(onMain.status).toBe(404);
    expect(await onMain.json()).toMatchObject({ code: 'not_found' });

    const metrics = await scrape(metricsUrl.href);
    expect(metrics.value('sentry_tunnel_requests_total{project="web",status="200",outcome="forwarded"}')).toBe(1);
    // The /metrics 404 on the main port was traffic; scrapes on the metrics port are not.
    expect(metrics.value('sentry_tunnel_requests_total{project="unknown",status="404",outcome="rejected"}')).toBe(1);
    const elsewhere = await fetch(`${metricsUrl.origin}/healthz`);
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.json()).toMatchObject({ code: 'not_found' });

    await tunnel.shutdown();
    await expect(fetch(metricsUrl.href)).rejects.toThrow();
  });

  it('fails to start with a message naming metrics.port when that port is taken, and releases the main port', async () => {
    const blocker = await listenOn(0);
    const taken = blocker.port;
    const probe = await listenOn(0);
    const mainPort = probe.port;
    await probe.close();
    try {
      const starting = startTestTunnel({ server: { port: mainPort }, projects: { web: { dsn: fake.dsn('2') } }, metrics: { port: taken } });
      await expect(starting).rejects.toThrow(StartupError);
      await expect(starting).rejects.toThrow(/already in use.*metrics\.port/);
      // The main listener was opened first; a failed start must not leave it bound.
      await (await listenOn(mainPort)).close();
    } finally {
      await blocker.close();
    }
  });
});

describe('metrics configuration', () => {
  const problems = (input: object) => {
    try {
      validateConfig({ projects: { web: { dsn: 'https://abc@o1.ingest.sentry.io/2' } }, ...input });
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.map((problem) => `${problem.path}: ${problem.message}`);
      throw error;
    }
    return [];
  };

  it('defaults to /metrics on the main port', () => {
    const config = validateConfig({ projects: { web: { dsn: 'https://abc@o1.ingest.sentry.io/2' } } });
    expect(config.metrics).toEqual({ enabled: true, path: '/metrics', port: null });
  });

  it('rejects a metrics path that collides on the main port, and a metrics port equal to server.port', () => {
    expect(problems({ server: { path: '/tunnel' }, metrics: { path: '/tunnel/metrics' } })).toEqual([
      'metrics.path: collides with server.path or a health endpoint on the same port',
    ]);
    expect(problems({ metrics: { path: '/healthz' } })).toEqual(['metrics.path: collides with server.path or a health endpoint on the same port']);
    expect(problems({ metrics: { path: '/tunnel', port: 9464 } })).toEqual([]);
    expect(problems({ server: { port: 9464 }, metrics: { port: 9464 } })).toEqual(['metrics.port: must differ from server.port (null serves metrics on server.port)']);
    expect(problems({ metrics: { port: 70000 } })).toEqual(['metrics.port: port must be 1–65535']);
    expect(problems({ metrics: { path: 'metrics' } })).toHaveLength(1);
  });

  it('lets server.path be /metrics only where metrics are not served on the main port', () => {
    expect(problems({ server: { path: '/metrics' } })).toEqual(['metrics.path: collides with server.path or a health endpoint on the same port']);
    expect(problems({ server: { path: '/metrics' }, metrics: { enabled: false } })).toEqual([]);
    expect(problems({ server: { path: '/metrics' }, metrics: { port: 9464 } })).toEqual([]);
    expect(problems({ server: { path: '/healthz' }, metrics: { enabled: false } })).toEqual(['server.path: path collides with a built-in endpoint']);
  });

  it('with metrics off, a tunnel on /metrics takes envelopes there', async () => {
    tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, server: { path: '/metrics' }, metrics: { enabled: false } });
    const response = await fetch(`http://127.0.0.1:${tunnel.address.port}/metrics`, { method: 'POST', body: errorEnvelope(fake.dsn()) });
    expect(response.status).toBe(200);
    expect((await fake.waitForRequests(1))[0]?.url).toMatch(/^\/api\/2\/envelope\//);
  });
});
