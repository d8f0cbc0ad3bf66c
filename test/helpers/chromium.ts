// Debian's Chromium driven by playwright-core (never a browser download), fenced to loopback: tests
// that need it skip with a printed reason locally and fail under CI when it is missing.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Request, chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. Under CI a missing browser is an error, not a skip. */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `${CHROMIUM_PATH} not found (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (process.env.CI) throw new Error(`CI is set and the browser tests need Chromium: ${reason}`);
  console.warn(`skipping the browser SDK tests: ${reason}`);
  return reason;
}

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Every non-loopback request goes to a proxy on a closed loopback port and fails there; Chromium
  // never proxies loopback, so the pages, the tunnel and nothing else stay reachable.
  '--proxy-server=http://127.0.0.1:9',
];

export interface SeenRequest {
  readonly url: string;
  readonly method: string;
  /** The body as it left the page. */
  readonly body: Buffer | null;
  readonly request: Request;
}

export interface Chromium {
  readonly context: BrowserContext;
  readonly version: string;
  /** Every request any page made, in order. */
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/** One browser per test file, in a fresh profile directory. */
export async function launchChromium(): Promise<Chromium> {
  const profile = await mkdtemp(join(tmpdir(), 'sentry-tunnel-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: LAUNCH_ARGS,
    timeout: 30_000,
  });
  context.setDefaultTimeout(10_000);
  const requests: SeenRequest[] = [];
  context.on('request', (request) => {
    requests.push({ url: request.url(), method: request.method(), body: request.postDataBuffer(), request });
  });
  return {
    context,
    version: context.browser()?.version() ?? 'unknown',
    requests,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
