// Next.js from a production build (next build, then next start on loopback): the App Router route
// handler (`export const POST = tunnel.fetch`) and the Pages Router API route (`export default
// tunnel.middleware`) of test/fixtures/next-app, each through the embedded contract.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEmbeddedContract } from '../helpers/embedded-contract.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { type Run, REPO, fixtureDir, freePort, installSelf, runNode, runToEnd } from '../helpers/fixture-app.js';
import { send } from '../helpers/http.js';

const APP = fixtureDir('next-app');
const NEXT = join(REPO, 'node_modules', 'next', 'dist', 'bin', 'next');
const OFFLINE = { NEXT_TELEMETRY_DISABLED: '1' };
/** A cold build takes ~25 s on two busy cores; Turbopack's cache in .next/cache (Next.js' own, keyed by content) makes the next ones ~7 s. */
const BUILD_TIMEOUT_MS = 240_000;

let built: Promise<{ output: string; ms: number }> | undefined;

/** One production build per test file, run without SENTRY_DSN, as CI and Docker builds do. */
function build(): Promise<{ output: string; ms: number }> {
  built ??= (async () => {
    installSelf(APP);
    return runToEnd([NEXT, 'build'], APP, OFFLINE, BUILD_TIMEOUT_MS);
  })();
  return built;
}

async function startNext(sentry: FakeSentry): Promise<{ origin: string; server: Run }> {
  await build();
  const port = await freePort();
  const server = runNode([NEXT, 'start', '-H', '127.0.0.1', '-p', String(port)], APP, { ...OFFLINE, SENTRY_DSN: sentry.dsn() });
  const origin = `http://127.0.0.1:${port}`;
  try {
    await server.reachable(`${origin}/`);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { origin, server };
}

describe('next build', () => {
  it('builds the tunnel routes without SENTRY_DSN in the environment (the configuration is read on first use)', async () => {
    const { output, ms } = await build();
    expect(output).toMatch(/ƒ \/tunnel\n/);
    expect(output).toMatch(/ƒ \/api\/tunnel\n/);
    console.info(`next build: ${ms} ms`);
  }, BUILD_TIMEOUT_MS);
});

describeEmbeddedContract('Next.js App Router route handler (export const POST = tunnel.fetch)', async (sentry) => {
  const { origin, server } = await startNext(sentry);
  return {
    url: `${origin}/tunnel`,
    // A route handler sees no socket, and next start leaves a client-sent X-Forwarded-For as it is.
    clientAddress: undefined,
    bodyReadUrl: `${origin}/tunnel-read-first`,
    close: () => server.stop(),
  };
});

describeEmbeddedContract('Next.js Pages Router API route (export default tunnel.middleware)', async (sentry) => {
  const { origin, server } = await startNext(sentry);
  return {
    url: `${origin}/api/tunnel`,
    clientAddress: '127.0.0.1',
    bodyReadUrl: `${origin}/api/tunnel-parsed`,
    close: () => server.stop(),
  };
});

describe('Next.js App Router: the client address', () => {
  let sentry: FakeSentry;
  let app: { origin: string; server: Run };

  beforeAll(async () => {
    sentry = await FakeSentry.start();
    app = await startNext(sentry);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await app?.server.stop();
    await sentry?.close();
  });

  it('forwards without X-Forwarded-For, whatever the client claims, and logs that the per-client budget is skipped', async () => {
    for (const claimed of [undefined, '203.0.113.9']) {
      const res = await send({ url: `${app.origin}/tunnel`, body: errorEnvelope(sentry.dsn()), headers: claimed ? { 'x-forwarded-for': claimed } : {} });
      expect(res.status).toBe(200);
    }
    const arrived = await sentry.waitForRequests(2);
    expect(arrived.map((request) => request.headers['x-forwarded-for'])).toEqual([undefined, undefined]);
    await app.server.printed('request without a client address');
  });
});
