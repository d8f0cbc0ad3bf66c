// An app that embeds the tunnel and runs @sentry/node itself: its SDK instruments undici and node:http
// process-wide, yet the tunnel's forwards gain no trace headers, breadcrumbs or spans, and with the
// README's one option its tunnel route creates no spans of its own either.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as Sentry from '@sentry/node';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope, parseItemJson } from '../../src/core/envelope.js';
import { createTunnel } from '../../src/index.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { send } from '../helpers/http.js';

let browserSentry: FakeSentry;
let appSentry: FakeSentry;
let server: Server;
let origin: string;
let tunnel: ReturnType<typeof createTunnel>;

beforeAll(async () => {
  browserSentry = await FakeSentry.start();
  // Its own loopback address: the SDK never instruments requests to its own DSN's host anyway.
  appSentry = await FakeSentry.start('127.0.0.2');
  Sentry.init({
    dsn: appSentry.dsn('9', 'feedface0009'),
    tracesSampleRate: 1,
    // The README's line: the tunnel route's own requests are not traced.
    // The README's line: the tunnel route's own requests are not traced.
    ignoreSpans: [{ op: 'http.server', attributes: { 'url.path': /^\/tunnel(\/|$)/ } }],
  });
  tunnel = createTunnel({ projects: { web: { dsn: browserSentry.dsn() } }, log: { level: 'silent' } });
  const app = express();
  app.post('/tunnel', tunnel.middleware);
  app.get('/work', async (_req, res) => {
    // The app's own traced work calls the tunnel inline, so the forward happens inside its span and
    // scope: whatever the SDK records of it would show in that span's children and in this event.
    await Sentry.startSpan({ name: 'app work' }, async () => {
      const request = new Request('http://app.test/tunnel', { method: 'POST', body: errorEnvelope(browserSentry.dsn(), 'from a span') });
      const forwarded = await tunnel.fetch(request, { clientAddress: '127.0.0.1' });
      Sentry.captureException(new Error('the app fails after a forward'));
      res.json({ status: forwarded.status });
    });
  });
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await tunnel.close();
  await new Promise((resolve) => server.close(resolve));
  await Sentry.close(2_000);
  await browserSentry.close();
  await appSentry.close();
});

interface StreamedSpan {
  name?: string;
  attributes?: Record<string, { value?: unknown }>;
}

/** The spans (streamed, as @sentry/node 11 sends them by default) and breadcrumbs the app's SDK sent. */
function appTelemetry(): { spans: StreamedSpan[]; breadcrumbs: unknown[] } {
  const spans: StreamedSpan[] = [];
  const breadcrumbs: unknown[] = [];
  for (const request of appSentry.requests) {
    for (const item of parseEnvelope(request.body).items) {
      const payload = parseItemJson(item) as Record<string, unknown> | undefined;
      if (item.type === 'span' && payload) spans.push(...((payload.items as StreamedSpan[] | undefined) ?? []));
      if (item.type === 'event' && payload) {
        const crumbs = payload.breadcrumbs as { values?: unknown[] } | unknown[] | undefined;
        breadcrumbs.push(...((Array.isArray(crumbs) ? crumbs : crumbs?.values) ?? []));
      }
    }
  }
  return { spans, breadcrumbs };
}

const attribute = (span: StreamedSpan, name: string) => String(span.attributes?.[name]?.value ?? '');

describe('inside an app running @sentry/node', () => {
  it('forwards without sentry-trace or baggage headers, even from inside an active span', async () => {
    const res = await send({ url: `${origin}/work`, method: 'GET' });
    expect(res.json()).toEqual({ status: 200 });
    const [forwarded] = await browserSentry.waitForRequests(1);
    expect(forwarded?.headers['sentry-trace']).toBeUndefined();
    expect(forwarded?.headers.baggage).toBeUndefined();
    expect(forwarded?.headers.traceparent).toBeUndefined();
  });

  it("leaves no span or breadcrumb of the forward in the app's own telemetry", async () => {
    await Sentry.flush(2_000);
    const upstream = `127.0.0.1:${browserSentry.port}/`;
    const { spans, breadcrumbs } = appTelemetry();
    // The app's own span arrived, so the checks below look at real telemetry.
    expect(spans.map((span) => span.name)).toContain('app work');
    const clientSpans = spans.filter((span) => attribute(span, 'sentry.op') === 'http.client');
    expect(clientSpans.filter((span) => attribute(span, 'url.full').includes(upstream))).toEqual([]);
    expect(JSON.stringify(breadcrumbs)).not.toContain(upstream);
  });

  it("creates no spans for the tunnel route with the README's ignoreSpans line", async () => {
    appSentry.requests.length = 0;
    const res = await send({ url: `${origin}/tunnel`, body: errorEnvelope(browserSentry.dsn()) });
    expect(res.status).toBe(200);
    await send({ url: `${origin}/work`, method: 'GET' });
    await Sentry.flush(2_000);
    const { spans } = appTelemetry();
    const serverSpans = spans.filter((span) => attribute(span, 'sentry.op') === 'http.server');
    expect(serverSpans.map((span) => attribute(span, 'url.path'))).toContain('/work');
    expect(serverSpans.filter((span) => attribute(span, 'url.path') === '/tunnel')).toEqual([]);
  });
});
