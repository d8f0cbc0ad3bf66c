// @sentry/browser in Debian's Chromium behind a real ad blocker (@ghostery/adblocker-playwright with EasyList,
// EasyPrivacy and uBlock's lists from Debian): blocked without the tunnel, delivered byte-identical with it,
// and every tunnel path the README shows gets through.
import { readFileSync } from 'node:fs';
import { PlaywrightBlocker } from '@ghostery/adblocker-playwright';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../src/core/envelope.js';
import { type Chromium, chromiumMissing, launchChromium } from '../helpers/chromium.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { blockedBy, filterListsMissing, filterListsText } from '../helpers/filter-lists.js';
import { REPO } from '../helpers/run-cli.js';
import { PageServer, type SentryPageOptions } from '../helpers/sentry-page.js';
import { waitForLog } from '../helpers/log-lines.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';
import { waitFor } from '../helpers/wait-for.js';

const missing = chromiumMissing() ?? filterListsMissing();
const README = readFileSync(`${REPO}/README.md`, 'utf8');

let browser: Chromium;
let pages: PageServer;
let sentry: FakeSentry;
let blocker: PlaywrightBlocker;
const blocked: string[] = [];
const tunnels: TestTunnel[] = [];
const openPages: Page[] = [];

async function openPage(options: SentryPageOptions): Promise<Page> {
  const page = await browser.context.newPage();
  openPages.push(page);
  await blocker.enableBlockingInPage(page);
  await page.goto(pages.page(options));
  return page;
}

declare const Sentry: typeof import('@sentry/browser');
declare function throwLater(message: string): void;

/**
 * Every tunnel path the README shows: Sentry.init's tunnel, framework routes, POST routes, server.path values,
 * and the neutral paths its "Ad blockers" section recommends (the rest of that section shows blocked ones on purpose).
 */
function readmeTunnelPaths(readme: string): string[] {
  const start = readme.indexOf('## Ad blockers');
  const end = readme.indexOf('\n## ', start + 1);
  const adBlockers = readme.slice(start, end);
  readme = readme.slice(0, start) + readme.slice(end);
  const found = new Set<string>();
  const add = (path: string) => {
    if (/^\/[\w\-./{}<>]*$/.test(path) && path !== '/metrics') found.add(path.replace(/\{project\}|<name>/g, 'web'));
  };
  for (const [, url] of readme.matchAll(/tunnel: '([^']+)'/g)) add(new URL(url ?? '', 'https://app.example.com').pathname);
  for (const [, path] of readme.matchAll(/app\.(?:post|options|use|on)\([^'\n]*'(\/[^']*)'/g)) add(path ?? '');
  for (const [, path] of readme.matchAll(/POST (\/[\w\-./{}<>]*)/g)) add(path ?? '');
  for (const [, list] of readme.matchAll(/"path": (\[[^\]]*\]|"[^"]*")/g)) for (const path of [JSON.parse(list ?? '""')].flat() as string[]) add(path);
  for (const [, line] of adBlockers.matchAll(/^Neutral paths: (.*)$/gm)) for (const [, path] of (line ?? '').matchAll(/`(\/[^`]*)`/g)) add(path ?? '');
  return [...found].sort();
}

describe.skipIf(missing !== undefined)('@sentry/browser behind a real ad blocker', () => {
  beforeAll(async () => {
    [browser, pages, sentry] = await Promise.all([launchChromium(), PageServer.start(), FakeSentry.start()]);
    blocker = PlaywrightBlocker.parse(filterListsText(), { loadCosmeticFilters: false, enableOptimizations: false, debug: true });
    blocker.on('request-blocked', (request) => blocked.push(request.url));
  });

  afterEach(async () => {
    await Promise.all(openPages.splice(0).map((page) => page.close()));
    await Promise.all(tunnels.splice(0).map((tunnel) => tunnel.shutdown()));
    browser.requests.length = 0;
    sentry.requests.length = 0;
    blocked.length = 0;
  });

  afterAll(async () => {
    await Promise.all([browser?.close(), pages?.close(), sentry?.close()]);
  });

  it('without a tunnel, blocks the SDK posting straight to Sentry, even on loopback: nothing arrives', async () => {
    const page = await openPage({ init: { dsn: sentry.dsn() } });
    await page.evaluate(() => Sentry.captureMessage('straight to Sentry'));
    const request = await waitFor('the SDK to try', () => browser.requests.find((seen) => seen.url.includes('/envelope/')));
    expect(request.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/2\/envelope\/\?sentry_version=7&sentry_key=/);
    await waitFor('the blocker to refuse it', () => blocked.includes(request.url));
    expect(await request.request.response()).toBeNull();
    expect(request.request.failure()?.errorText).toMatch(/^net::ERR_BLOCKED_BY_CLIENT/);
    expect(['/?sentry_version=', '/?sentry_key=']).toContain(blockedBy(blocker, request.url, page.url()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sentry.requests).toEqual([]);
  });

  it('through the tunnel, delivers an error, a transaction and a Session Replay byte-identical; nothing is blocked', async () => {
    const tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn() } } });
    tunnels.push(tunnel);
    const page = await openPage({
      init: { dsn: sentry.dsn(), tunnel: tunnel.url, tracesSampleRate: 1, traceLifecycle: 'static', replaysSessionSampleRate: 1 },
      integrations: ['Sentry.browserTracingIntegration({ idleTimeout: 200 })', 'Sentry.replayIntegration({ minReplayDuration: 0, flushMinDelay: 300, flushMaxDelay: 600 })'],
    });
    await page.click('#buy');
    await page.evaluate(() => throwLater('behind an ad blocker'));
    const types = () => new Set(sentry.requests.flatMap((request) => parseEnvelope(request.body).items.map((item) => item.type)));
    await waitFor('an error, a transaction and a replay upstream', () => ['event', 'transaction', 'replay_recording'].every((type) => types().has(type)), 15_000);
    // Every envelope the page posted arrived byte for byte, and every upstream envelope with an error, a
    // transaction or a replay is one the page posted. (A client_report the SDK sends as the page goes hidden
    // can leave without Playwright seeing the request; it reaches Sentry all the same.)
    const postedBodies = () => browser.requests.filter((seen) => seen.url === tunnel.url && seen.method === 'POST').map((seen) => (seen.body ?? Buffer.alloc(0)).toString('base64'));
    const upstream = () => sentry.requests.map((request) => request.body.toString('base64'));
    await waitFor('every posted envelope upstream', () => postedBodies().every((body) => upstream().includes(body)));
    const posted = postedBodies();
    const reported = sentry.requests.filter((request) => parseEnvelope(request.body).items.some((item) => ['event', 'transaction', 'replay_event', 'replay_recording'].includes(item.type)));
    expect(reported.length).toBeGreaterThanOrEqual(3);
    for (const request of reported) expect(posted).toContain(request.body.toString('base64'));
    expect(posted.length).toBeGreaterThanOrEqual(reported.length);
    expect(blocked).toEqual([]);
  });

  it('lets every tunnel path the README shows through, in the browser and by the engine', async () => {
    const paths = readmeTunnelPaths(README);
    expect(paths).toEqual(expect.arrayContaining(['/tunnel', '/tunnel/web', '/api/sentry-tunnel']));
    const bases = [...new Set(paths.map((path) => (path.endsWith('/web') ? path.slice(0, -4) : path)))];
    const tunnel = await startTestTunnel({ server: { path: bases }, projects: { web: { dsn: sentry.dsn() } } });
    tunnels.push(tunnel);
    const origin = new URL(tunnel.url).origin;
    const isRequest = (line: Record<string, unknown>) => line.msg === 'request';
    for (const path of paths) {
      expect(blockedBy(blocker, `https://app.example.com${path}`), path).toBeUndefined();
      const page = await openPage({ init: { dsn: sentry.dsn(), tunnel: `${origin}${path}` } });
      const eventId = await page.evaluate(() => Sentry.captureMessage('via a README path'));
      await waitFor(`the event sent to ${path} upstream`, () => sentry.requests.some((request) => request.body.includes(eventId)));
      // The request line is written just after the answer, which comes after the forward reached upstream.
      await waitForLog(tunnel, (line) => isRequest(line) && line.path === path);
    }
    expect(blocked).toEqual([]);
    expect(tunnel.logs().filter(isRequest).map((line) => line.path)).toEqual(paths);
  });

  it('measures the README table: each URL is blocked by the rule it names, or by none', () => {
    const section = README.slice(README.indexOf('## Ad blockers'));
    const rows = [...section.matchAll(/^\| `(https?:\/\/[^`]+)`[^|]*\| (.+) \|$/gm)];
    expect(rows.length).toBeGreaterThanOrEqual(8);
    for (const [, url = '', cell = ''] of rows) {
      const rules = [...cell.matchAll(/`([^`]+)`/g)].map(([, rule]) => (rule ?? '').replace(/\\\|/g, '|'));
      const found = blockedBy(blocker, url.replace('…', '0123456789abcdef0123456789abcdef'));
      if (cell.startsWith('not blocked')) expect(found, url).toBeUndefined();
      else expect(rules, url).toContain(found);
    }
  });
});
