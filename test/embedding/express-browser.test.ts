// @sentry/browser in headless Chromium posting through a tunnel route of an Express app: an error, a
// transaction and a Session Replay arrive upstream exactly as the browser sent them.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../src/core/envelope.js';
import { createTunnel } from '../../src/index.js';
import { type Chromium, chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { PageServer } from '../helpers/sentry-page.js';
import { waitFor } from '../helpers/wait-for.js';

const missing = chromiumMissing();

declare const Sentry: typeof import('@sentry/browser');

describe.skipIf(missing !== undefined)('@sentry/browser through an Express route', () => {
  let browser: Chromium;
  let pages: PageServer;
  let sentry: FakeSentry;
  let server: Server;
  let tunnelUrl: string;
  let tunnel: ReturnType<typeof createTunnel>;

  beforeAll(async () => {
    [browser, pages, sentry] = await Promise.all([launchChromium(), PageServer.start(), FakeSentry.start()]);
    tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, cors: { origins: [pages.origin] }, log: { level: 'silent' } });
    const app = express();
    app.post('/api/sentry-tunnel', tunnel.middleware);
    app.options('/api/sentry-tunnel', tunnel.middleware);
    server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    tunnelUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/sentry-tunnel`;
  });

  afterAll(async () => {
    // The browser goes first: Chromium keeps sockets it opened ahead of need (preconnects) that never
    // carry a request, and node:http's server.close() waits for those until headersTimeout (60 s).
    await browser?.close();
    await tunnel?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await Promise.all([pages?.close(), sentry?.close()]);
  });

  it('delivers an error, a transaction and a Session Replay byte for byte', async () => {
    const url = pages.page({
      init: { dsn: sentry.dsn(), tunnel: tunnelUrl, tracesSampleRate: 1, replaysSessionSampleRate: 1, traceLifecycle: 'static' },
      integrations: ['Sentry.browserTracingIntegration({ idleTimeout: 200 })', 'Sentry.replayIntegration({ minReplayDuration: 0, flushMinDelay: 300, flushMaxDelay: 600 })'],
    });
    const page = await browser.context.newPage();
    await page.goto(url);
    await page.click('#buy');
    await page.evaluate(() => Sentry.captureException(new Error('checkout failed')));

    const types = () => new Set(sentry.requests.flatMap((request) => parseEnvelope(request.body).items.map((item) => item.type)));
    await waitFor('an event, a transaction and a replay recording upstream', () => {
      const seen = types();
      return seen.has('event') && seen.has('transaction') && seen.has('replay_recording');
    });
    const posted = await waitFor('every posted envelope upstream', () => {
      const bodies = browser.requests.filter((seen) => seen.url === tunnelUrl && seen.method === 'POST').map((seen) => seen.body ?? Buffer.alloc(0));
      return bodies.length === sentry.requests.length && bodies;
    });
    const base64 = (bodies: readonly Buffer[]) => bodies.map((body) => body.toString('base64')).sort();
    expect(base64(sentry.requests.map((request) => request.body))).toEqual(base64(posted));
    await page.close();
  });
});
