// selfMonitoring: the tunnel's own unexpected errors arrive at a separate (fake) Sentry project as
// well-formed event envelopes, sent directly; decisions and outages are not reported; storms are capped.
import { createRequire } from 'node:module';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import type { Forward } from '../../src/upstream/upstream.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry, type RecordedRequest } from '../helpers/fake-sentry.js';
import { scrape } from '../helpers/scrape.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
const SELF_KEY = 'selfmonitoringkey0001';

let ingest: FakeSentry;
let selfSentry: FakeSentry;
let tunnel: TestTunnel | undefined;

beforeEach(async () => {
  [ingest, selfSentry] = await Promise.all([FakeSentry.start(), FakeSentry.start()]);
});

afterEach(async () => {
  await tunnel?.shutdown();
  tunnel = undefined;
  await Promise.all([ingest.close(), selfSentry.close()]);
});

/** A wrapper with a bug: what an unexpected internal error looks like from the pipeline's side. */
const buggyWrapper = (message: string) => (): Forward => async () => {
  throw new Error(message, { cause: new TypeError('inner cause') });
};

function start(selfMonitoring: object, wrapForward?: () => Forward) {
  return startTestTunnel(
    { projects: { web: { dsn: ingest.dsn('2') } }, selfMonitoring: { dsn: selfSentry.dsn('99', SELF_KEY), ...selfMonitoring } },
    wrapForward ? { wrapForward } : {},
  );
}

function parseEnvelope(request: RecordedRequest) {
  const lines = request.body.toString().split('\n');
  return {
    header: JSON.parse(lines[0] ?? '') as Record<string, unknown>,
    itemHeader: JSON.parse(lines[1] ?? '') as Record<string, unknown>,
    event: JSON.parse(lines[2] ?? '') as Record<string, any>,
  };
}

it('reports a forced internal error to the self-monitoring project as a well-formed event envelope', async () => {
  tunnel = await start({ environment: 'staging' }, buggyWrapper('boom in a forward wrapper'));
  const response = await tunnel.post(errorEnvelope(ingest.dsn('2'), 'client-secret-payload'));
  expect(response.status).toBe(500);
  expect(await response.json()).toMatchObject({ code: 'internal_error' });

  const [request] = await selfSentry.waitForRequests(1);
  expect(request?.method).toBe('POST');
  expect(request?.url).toBe(`/api/99/envelope/?sentry_version=7&sentry_key=${SELF_KEY}`);
  expect(request?.headers['content-type']).toBe('application/x-sentry-envelope');
  expect(request?.headers['user-agent']).toBe(`sentry-tunnel/${version}`);
  expect(ingest.requests).toHaveLength(0);

  const { header, itemHeader, event } = parseEnvelope(request as RecordedRequest);
  expect(header.event_id).toMatch(/^[0-9a-f]{32}$/);
  expect(header.dsn).toBeUndefined(); // sent directly, as an SDK does: the key travels in the URL only
  expect(header.sdk).toEqual({ name: 'sentry-tunnel', version });
  expect(typeof header.sent_at).toBe('string');
  expect(itemHeader.type).toBe('event');
  expect(event.event_id).toBe(header.event_id);
  expect(event).toMatchObject({ level: 'error', platform: 'node', environment: 'staging', release: `sentry-tunnel@${version}`, tags: { project: 'web' } });
  const values = event.exception.values as { type: string; value: string; stacktrace: { frames: { filename: string }[] }; mechanism?: object }[];
  expect(values.map((value) => [value.type, value.value])).toEqual([
    ['TypeError', 'inner cause'],
    ['Error', 'boom in a forward wrapper'],
  ]);
  expect(values[1]?.mechanism).toEqual({ type: 'sentry-tunnel', handled: true });
  expect(values[1]?.stacktrace.frames.some((frame) => frame.filename.endsWith('self-monitoring.test.ts'))).toBe(true);
  const logLine = tunnel.logs().find((line) => line.msg === 'request' && line.status === 500);
  expect(event.contexts.request_record).toEqual({ reqId: logLine?.reqId, method: 'POST', path: '/tunnel' });
  // Never the client's envelope, never the tunnelled project's DSN key.
  expect(request?.body.toString()).not.toContain('client-secret-payload');
  expect(request?.body.toString()).not.toContain('abc123def456');

  // Sent directly: the report is not a request of the tunnel and not one of its upstream calls.
  expect(tunnel.logs().filter((line) => line.msg === 'request')).toHaveLength(1);
  const metrics = await scrape(tunnel.metricsUrl ?? '');
  expect(metrics.series('sentry_tunnel_upstream_duration_seconds_count')).toEqual([]);
  expect(metrics.value('sentry_tunnel_self_monitoring_events_total{outcome="sent"}')).toBe(1);
  expect(metrics.value('sentry_tunnel_rejections_total{code="internal_error"}')).toBe(1);
});

it('does not report 4xx decisions or upstream outages, only the unexpected', async () => {
  let failWith: Error | undefined;
  const wrapper = (forward: Forward): Forward => async (envelope) => {
    if (failWith) throw failWith;
    return forward(envelope);
  };
  tunnel = await startTestTunnel({ projects: { web: { dsn: ingest.dsn('2') } }, selfMonitoring: { dsn: selfSentry.dsn('99', SELF_KEY) } }, { wrapForward: wrapper });
  expect((await tunnel.post(errorEnvelope(ingest.dsn('404')))).status).toBe(403);
  expect((await tunnel.post('not an envelope')).status).toBe(400);
  failWith = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  const outage = await tunnel.post(errorEnvelope(ingest.dsn('2')));
  expect(outage.status).toBe(502);
  expect(await outage.json()).toMatchObject({ code: 'upstream_unavailable' });
  // ERR_* codes are Node's programming errors, not the network's: a bug, whatever its code says.
  failWith = Object.assign(new TypeError('the one real bug'), { code: 'ERR_INVALID_ARG_TYPE' });
  expect((await tunnel.post(errorEnvelope(ingest.dsn('2')))).status).toBe(500);

  await selfSentry.waitForRequests(1);
  await tunnel.shutdown(); // flushes anything still on its way
  expect(selfSentry.requests).toHaveLength(1);
  expect(parseEnvelope(selfSentry.requests[0] as RecordedRequest).event.exception.values.at(-1).value).toBe('the one real bug');
});

it('caps an error storm at selfMonitoring.maxEventsPerMinute and counts what it dropped', async () => {
  tunnel = await start({ maxEventsPerMinute: 3 }, buggyWrapper('storm'));
  const storm = 20;
  for (let i = 0; i < storm; i++) expect((await tunnel.post(errorEnvelope(ingest.dsn('2')))).status).toBe(500);
  await selfSentry.waitForRequests(3);
  const metricsUrl = tunnel.metricsUrl ?? '';
  const metrics = await scrape(metricsUrl);
  const sent = metrics.value('sentry_tunnel_self_monitoring_events_total{outcome="sent"}') ?? 0;
  const dropped = metrics.value('sentry_tunnel_self_monitoring_events_total{outcome="rate_limited"}') ?? 0;
  await tunnel.shutdown();
  // The bucket holds 3; it refills at 3 per minute, so at most one more can have been earned meanwhile.
  expect(selfSentry.requests.length).toBeLessThanOrEqual(4);
  expect(sent + dropped).toBe(storm);
  expect(dropped).toBeGreaterThanOrEqual(storm - 4);
  expect(tunnel.logs().filter((line) => line.msg === 'self-monitoring is rate-limited; dropping error reports')).toHaveLength(1);
});

it('stops sending while Sentry rate-limits the self-monitoring project', async () => {
  selfSentry.reply = { status: 429, headers: { 'retry-after': '60', 'x-sentry-rate-limits': '60:error:project' } };
  tunnel = await start({}, buggyWrapper('limited'));
  expect((await tunnel.post(errorEnvelope(ingest.dsn('2')))).status).toBe(500);
  await selfSentry.waitForRequests(1);
  for (let i = 0; i < 3; i++) expect((await tunnel.post(errorEnvelope(ingest.dsn('2')))).status).toBe(500);
  const metrics = await scrape(tunnel.metricsUrl ?? '');
  await tunnel.shutdown();
  expect(selfSentry.requests).toHaveLength(1);
  expect(metrics.value('sentry_tunnel_self_monitoring_events_total{outcome="rate_limited"}')).toBe(4);
});

it('keeps serving when the self-monitoring project cannot be reached', async () => {
  const unreachable = selfSentry.dsn('99', SELF_KEY);
  await selfSentry.close();
  tunnel = await startTestTunnel({ projects: { web: { dsn: ingest.dsn('2') } }, selfMonitoring: { dsn: unreachable } }, { wrapForward: buggyWrapper('nobody listens') });
  expect((await tunnel.post(errorEnvelope(ingest.dsn('2')))).status).toBe(500);
  await tunnel.shutdown();
  expect(tunnel.logs().some((line) => line.msg === 'self-monitoring event could not be sent' && line.level === 40)).toBe(true);
  expect(tunnel.rawLogs()).not.toContain(SELF_KEY);
  selfSentry = await FakeSentry.start(); // for afterEach
});

it('is off by default and validates its DSN', async () => {
  tunnel = await startTestTunnel({ projects: { web: { dsn: ingest.dsn('2') } } }, { wrapForward: buggyWrapper('unreported') });
  expect((await tunnel.post(errorEnvelope(ingest.dsn('2')))).status).toBe(500);
  expect(tunnel.logs().find((line) => typeof line.url === 'string')?.selfMonitoring).toBe(false);
  expect(tunnel.logs().some((line) => line.msg === 'unexpected error while handling a request')).toBe(true);

  const config = validateConfig({ projects: { web: { dsn: 'https://abc@o1.ingest.sentry.io/2' } } });
  expect(config.selfMonitoring).toEqual({ dsn: '', environment: 'production', maxEventsPerMinute: 10 });
  let problems: string[] = [];
  try {
    validateConfig({ projects: { web: { dsn: 'https://abc@o1.ingest.sentry.io/2' } }, selfMonitoring: { dsn: 'https://o1.ingest.sentry.io/99', maxEventsPerMinute: 0 } });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems = error.problems.map((problem) => problem.path);
  }
  expect(problems).toEqual(['selfMonitoring.dsn', 'selfMonitoring.maxEventsPerMinute']);
});
