// @sentry/browser in Debian's headless Chromium, posting through the tunnel to a fake Sentry: the
// bytes, CORS, rate limits and Session Replay as a real browser and a real SDK do them.
import { inflateSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type EnvelopeItem, parseEnvelope, parseItemJson } from '../../src/core/envelope.js';
import { type Chromium, chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { FakeSentry, type RecordedRequest } from '../helpers/fake-sentry.js';
import { runCli } from '../helpers/run-cli.js';
import { waitForLog } from '../helpers/log-lines.js';
import { PageServer, type SentryPageOptions } from '../helpers/sentry-page.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';
import { waitFor } from '../helpers/wait-for.js';

const missing = chromiumMissing();

let browser: Chromium;
let pages: PageServer;
let sentry: FakeSentry;
const tunnels: TestTunnel[] = [];
const openPages: Page[] = [];

async function tunnelFor(origins: '*' | string[]): Promise<TestTunnel> {
  const tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn() } }, cors: { origins } });
  tunnels.push(tunnel);
  return tunnel;
}

async function openPage(tunnel: TestTunnel, options: Partial<SentryPageOptions> = {}): Promise<Page> {
  const url = pages.page({ ...options, init: { dsn: sentry.dsn(), tunnel: tunnel.url, ...options.init } });
  const page = await browser.context.newPage();
  openPages.push(page);
  await page.goto(url);
  return page;
}

/** Requests to anything but the page server and the tunnels (blob: and data: URLs never touch a network). */
function strayRequests(tunnelUrls: readonly string[]): string[] {
  return browser.requests
    .map((seen) => seen.url)
    .filter((url) => !url.startsWith(`${pages.origin}/`) && !tunnelUrls.includes(url) && !/^(blob|data):/.test(url));
}

/** What left the page for the tunnel, in order. */
function postedTo(tunnel: TestTunnel): Buffer[] {
  return browser.requests.filter((seen) => seen.url === tunnel.url && seen.method === 'POST').map((seen) => seen.body ?? Buffer.alloc(0));
}

/** Everything the browser posted to the tunnel arrived upstream, byte for byte, and nothing else did. */
async function expectForwardedByteForByte(tunnel: TestTunnel): Promise<void> {
  const posted = await waitFor('every posted envelope upstream', () => {
    const posted = postedTo(tunnel);
    return posted.length > 0 && posted.length === sentry.requests.length && posted;
  });
  const base64 = (bodies: readonly Buffer[]) => bodies.map((body) => body.toString('base64')).sort();
  expect(base64(sentry.requests.map((request) => request.body))).toEqual(base64(posted));
  for (const request of sentry.requests) expect(request.url).toBe('/api/2/envelope/?sentry_version=7&sentry_key=abc123def456');
}

function items(body: Buffer): readonly EnvelopeItem[] {
  return parseEnvelope(body).items;
}

function itemsOfType(requests: readonly RecordedRequest[], type: string): Record<string, unknown>[] {
  return requests.flatMap((request) => items(request.body).filter((item) => item.header.type === type)).map((item) => parseItemJson(item) ?? {});
}

interface SentByPage {
  eventId: string;
  type: string;
  statusCode?: number;
}

// What the page's script puts in scope (see test/helpers/sentry-page.ts).
declare const Sentry: typeof import('@sentry/browser');
declare const sent: SentByPage[];
declare function throwLater(message: string): void;

function sentByPage(page: Page): Promise<SentByPage[]> {
  return page.evaluate(() => sent);
}

describe.skipIf(missing !== undefined)('@sentry/browser in headless Chromium through the tunnel', () => {
  beforeAll(async () => {
    [browser, pages, sentry] = await Promise.all([launchChromium(), PageServer.start(), FakeSentry.start()]);
  });

  afterEach(async () => {
    await Promise.all(openPages.splice(0).map((page) => page.close()));
    const stray = strayRequests(tunnels.map((tunnel) => tunnel.url));
    await Promise.all(tunnels.splice(0).map((tunnel) => tunnel.shutdown()));
    browser.requests.length = 0;
    sentry.requests.length = 0;
    sentry.reply = {};
    // The pages load only from their own origin, and the SDK talks only to the tunnel.
    expect(stray).toEqual([]);
  });

  afterAll(async () => {
    await Promise.all([browser?.close(), pages?.close(), sentry?.close()]);
  });

  it('delivers captureMessage and an uncaught error byte-identical to what the browser posted', async () => {
    const tunnel = await tunnelFor([pages.origin]);
    const page = await openPage(tunnel);
    const messageId = await page.evaluate(() => Sentry.captureMessage('hello through the tunnel'));
    await page.evaluate(() => throwLater('uncaught in the browser'));

    const [message, error] = await waitFor('both events upstream', () => {
      const events = itemsOfType(sentry.requests, 'event');
      const message = events.find((event) => event.event_id === messageId);
      const error = events.find((event) => JSON.stringify(event.exception ?? null).includes('uncaught in the browser'));
      return message && error && [message, error];
    });
    expect(message.message).toBe('hello through the tunnel');
    expect(error.exception).toMatchObject({ values: [{ type: 'Error', value: 'uncaught in the browser', mechanism: { handled: false } }] });

    await expectForwardedByteForByte(tunnel);
    for (const seen of browser.requests.filter((seen) => seen.url === tunnel.url)) {
      expect((await seen.request.response())?.headers()['access-control-allow-origin']).toBe(pages.origin);
    }

    // The SDK itself read Sentry's answers: the cross-origin responses passed CORS.
    const sent = await waitFor('the SDK to hear back about both events', async () => {
      const sent = await sentByPage(page);
      return sent.length >= 2 && sent;
    });
    expect(sent.map((entry) => entry.statusCode)).toEqual([200, 200]);
  });

  it('passes the CORS preflight a browser sends when the SDK is given a non-simple header', async () => {
    // The SDK's own posts are CORS "simple" requests (text/plain, no custom headers): no preflight.
    // An app that sets transport headers makes the browser ask first.
    const tunnel = await tunnelFor([pages.origin]);
    const page = await openPage(tunnel, { init: { transportOptions: { headers: { 'Content-Type': 'application/x-sentry-envelope' } } } });
    const eventId = await page.evaluate(() => Sentry.captureMessage('after a preflight'));
    await waitFor('the event upstream', () => itemsOfType(sentry.requests, 'event').find((event) => event.event_id === eventId));
    expect(sentry.requests[0]?.headers['content-type']).toBe('application/x-sentry-envelope');
    await expectForwardedByteForByte(tunnel);
    const entry = await waitFor('the SDK to hear back', async () => (await sentByPage(page)).find((entry) => entry.eventId === eventId));
    expect(entry.statusCode).toBe(200);

    // A request line is written once its response has finished: wait for the POST's.
    const lines = await waitForLog(tunnel, (line) => line.msg === 'request' && line.method === 'POST');
    expect(tunnel.logs().filter((line) => line.msg === 'request').map((line) => [line.method, line.status])).toEqual([
      ['OPTIONS', 204],
      ['POST', 200],
    ]);
    expect(lines).toHaveLength(1);
  });

  // SDK 11 streams spans by default (`span` items, v2); `traceLifecycle: 'static'` sends the classic transaction.
  it('delivers the pageload spans of browser tracing, streamed as the SDK does by default', async () => {
    const tunnel = await tunnelFor([pages.origin]);
    const page = await openPage(tunnel, { init: { tracesSampleRate: 1 }, integrations: ['Sentry.browserTracingIntegration({ idleTimeout: 200 })'] });
    const container = await waitFor('the pageload span upstream', async () => {
      // The span buffer flushes every 5 s on its own; Sentry.flush() sends what has ended so far.
      await page.evaluate(() => Sentry.flush(1_000));
      return itemsOfType(sentry.requests, 'span').find((item) => JSON.stringify(item).includes('"auto.pageload.browser"'));
    });
    expect(container).toMatchObject({ version: 2 });
    const spans = container.items as { is_segment?: boolean; attributes: Record<string, { value: unknown }> }[];
    expect(spans.find((span) => span.is_segment)?.attributes).toMatchObject({
      'sentry.op': { value: 'pageload' },
      'url.path': { value: new URL(page.url()).pathname },
    });
    await expectForwardedByteForByte(tunnel);
  });

  it('delivers the pageload transaction of browser tracing with traceLifecycle "static"', async () => {
    const tunnel = await tunnelFor([pages.origin]);
    const page = await openPage(tunnel, {
      init: { tracesSampleRate: 1, traceLifecycle: 'static' },
      integrations: ['Sentry.browserTracingIntegration({ idleTimeout: 200 })'],
    });
    const transaction = await waitFor('the pageload transaction upstream', () => itemsOfType(sentry.requests, 'transaction')[0]);
    expect(transaction).toMatchObject({ type: 'transaction', transaction: new URL(page.url()).pathname, contexts: { trace: { op: 'pageload' } } });
    await expectForwardedByteForByte(tunnel);
  });

  it('refuses a page whose origin cors.origins does not list: nothing is forwarded and the SDK hears nothing', async () => {
    const tunnel = await tunnelFor(['https://app.example.com']);
    const page = await openPage(tunnel);
    const failure = new Promise<string | undefined>((resolve) => {
      page.on('requestfailed', (request) => {
        if (request.url() === tunnel.url) resolve(request.failure()?.errorText);
      });
    });
    const eventId = await page.evaluate(() => Sentry.captureMessage('from an origin the tunnel does not know'));

    const entry = await waitFor('the SDK to give up on the event', async () => (await sentByPage(page)).find((entry) => entry.eventId === eventId));
    // The browser withheld the 403 from the SDK because it carried no Access-Control-Allow-Origin.
    expect(entry.statusCode).toBeUndefined();
    expect(await failure).toBe('net::ERR_FAILED');
    const refused = tunnel.logs().filter((line) => line.msg === 'request' && line.method === 'POST');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ status: 403, code: 'origin_not_allowed', outcome: 'rejected' });
    expect(sentry.requests).toEqual([]);

    // The operator's tool explains it: the page's origin is missing from cors.origins.
    const diagnosis = await runCli(['send-test', '--url', tunnel.url, '--dsn', sentry.dsn(), '--origin', pages.origin]);
    expect(diagnosis.code).toBe(1);
    expect(diagnosis.stdout).toContain(`Add "${pages.origin}" to cors.origins`);
    expect(sentry.requests).toEqual([]);
  });

  it('stops the SDK sending errors after a 429 with X-Sentry-Rate-Limits read through CORS, while transactions still flow', async () => {
    const tunnel = await tunnelFor([pages.origin]);
    sentry.reply = (request) =>
      items(request.body).some((item) => item.type === 'event')
        ? { status: 429, headers: { 'x-sentry-rate-limits': '60:error:organization:quota_exceeded' }, body: '' }
        : {};
    const page = await openPage(tunnel, { init: { tracesSampleRate: 1, traceLifecycle: 'static' } });
    const first = await page.evaluate(() => Sentry.captureMessage('before the limit'));
    await waitFor('the SDK to hear the 429', async () => (await sentByPage(page)).find((entry) => entry.eventId === first && entry.statusCode === 429));
    const postedBefore = postedTo(tunnel).length;

    const limited = await page.evaluate(() => {
      const ids = [1, 2, 3].map((n) => Sentry.captureMessage(`limited ${n}`));
      Sentry.startSpan({ name: 'after the limit', forceTransaction: true }, () => {});
      return ids;
    });
    const transaction = await waitFor('the transaction upstream', () => itemsOfType(sentry.requests, 'transaction')[0]);
    expect(transaction.transaction).toBe('after the limit');

    // Only the error category was limited, so the SDK read the header itself, not just the 429
    // (a bare 429 would have stopped every category for 60 s).
    const sent = await sentByPage(page);
    for (const id of limited) expect(sent.find((entry) => entry.eventId === id)).toMatchObject({ statusCode: undefined });
    expect(itemsOfType(sentry.requests, 'event').map((event) => event.event_id)).toEqual([first]);
    const postedAfter = postedTo(tunnel).slice(postedBefore);
    expect(postedAfter.map((body) => items(body).map((item) => item.type))).toEqual([['transaction']]);
    // The tunnel logged a request line for each POST the browser made, and for nothing more.
    const postsLogged = () => tunnel.logs().filter((line) => line.msg === 'request' && line.method === 'POST').length;
    await waitFor('a request line for each POST', () => postsLogged() === postedTo(tunnel).length);
    await expectForwardedByteForByte(tunnel);
  });

  it('delivers Session Replay recordings, binary and compressed, byte for byte', async () => {
    const tunnel = await tunnelFor([pages.origin]);
    const page = await openPage(tunnel, {
      init: { replaysSessionSampleRate: 1 },
      integrations: ['Sentry.replayIntegration({ minReplayDuration: 0, flushMinDelay: 300, flushMaxDelay: 600 })'],
    });
    await page.click('#buy');
    const recording = await waitFor('a replay recording upstream', () =>
      sentry.requests.flatMap((request) => items(request.body)).find((item) => item.type === 'replay_recording'),
    );
    // The recording is `{"segment_id":N}\n` and then zlib-compressed rrweb events (compressed in a web worker).
    const newline = recording.payload.indexOf(0x0a);
    expect(JSON.parse(recording.payload.subarray(0, newline).toString())).toEqual({ segment_id: 0 });
    const compressed = recording.payload.subarray(newline + 1);
    expect(compressed.some((byte) => byte >= 0x80)).toBe(true);
    const events = JSON.parse(inflateSync(compressed).toString()) as { type: number }[];
    expect(events.some((event) => event.type === 2)).toBe(true); // rrweb's full DOM snapshot
    expect(JSON.stringify(events)).toContain('{"id":"buy"}'); // the page's button, in the snapshot
    expect(itemsOfType(sentry.requests, 'replay_event')[0]).toMatchObject({ type: 'replay_event', segment_id: 0 });
    await expectForwardedByteForByte(tunnel);
  });

  it('fences the browser to loopback: a request for another address never leaves the machine', async () => {
    const tunnel = await tunnelFor([pages.origin]);
    const page = await openPage(tunnel);
    const outcome = await page.evaluate(() =>
      fetch('http://192.0.2.1/', { signal: AbortSignal.timeout(5_000) }).then(
        (response) => `answered ${response.status}`,
        (error: unknown) => String(error),
      ),
    );
    expect(outcome).toMatch(/^TypeError: Failed to fetch/);
    const attempts = browser.requests.filter((seen) => seen.url === 'http://192.0.2.1/');
    expect(attempts).toHaveLength(1);
    expect(attempts[0]?.request.failure()?.errorText).toBe('net::ERR_PROXY_CONNECTION_FAILED');
    // This one stray request was the point of the test; afterEach checks the rest.
    browser.requests.splice(browser.requests.findIndex((seen) => seen.url === 'http://192.0.2.1/'), 1);
  });
});
