// SvelteKit with adapter-node from a production build (vite build) of test/fixtures/sveltekit-app: the
// +server.ts route (node build/index.js) and the custom server that mounts tunnel.middleware in front
// of SvelteKit's handler (node server.js), each through the embedded contract, plus the pitfall
// between them: a body without Content-Type, which the route never gets and the custom server forwards.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ORIGIN, describeEmbeddedContract, expectError } from '../helpers/embedded-contract.js';
import { allByteValues, envelope, eventId } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { type Run, REPO, fixtureDir, freePort, installSelf, runNode, runToEnd } from '../helpers/fixture-app.js';
import { send } from '../helpers/http.js';

const APP = fixtureDir('sveltekit-app');
const VITE = join(REPO, 'node_modules', 'vite', 'bin', 'vite.js');
/** ~20 s on two busy cores. */
const BUILD_TIMEOUT_MS = 240_000;

let built: Promise<{ output: string; ms: number }> | undefined;

/** One production build per test file, run without SENTRY_DSN, as CI and Docker builds do. */
function build(): Promise<{ output: string; ms: number }> {
  built ??= (async () => {
    installSelf(APP);
    return runToEnd([VITE, 'build'], APP, {}, BUILD_TIMEOUT_MS);
  })();
  return built;
}

type Entry = 'build/index.js' | 'server.js';

async function startSvelteKit(entry: Entry, sentry: FakeSentry): Promise<{ origin: string; server: Run }> {
  await build();
  const port = await freePort();
  const server = runNode([entry], APP, { HOST: '127.0.0.1', PORT: String(port), SENTRY_DSN: sentry.dsn() });
  const origin = `http://127.0.0.1:${port}`;
  try {
    await server.reachable(`${origin}/health`);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { origin, server };
}

/** A Session Replay-like envelope: binary items, sent as the browser SDK sends them, without a Content-Type. */
function replayEnvelope(dsn: string): Buffer {
  const id = eventId();
  return envelope({ event_id: id, dsn }, [
    { type: 'replay_event', payload: { replay_id: id, type: 'replay_event' } },
    { type: 'replay_recording', payload: Buffer.concat([Buffer.from('{"segment_id":0}\n'), allByteValues()]), withLength: true },
  ]);
}

describe('vite build', () => {
  it('builds the tunnel route without SENTRY_DSN in the environment, leaving sentry-tunnel an import from node_modules', async () => {
    const { output, ms } = await build();
    expect(output).toContain('Using @sveltejs/adapter-node');
    console.info(`vite build: ${ms} ms`);
  }, BUILD_TIMEOUT_MS);
});

describeEmbeddedContract('SvelteKit +server.ts route (tunnel.fetch with getClientAddress())', async (sentry) => {
  const { origin, server } = await startSvelteKit('build/index.js', sentry);
  return {
    url: `${origin}/tunnel`,
    clientAddress: '127.0.0.1',
    // As the browser SDK sends events (text/plain, from a page's origin): without a Content-Type the
    // route gets no body (below), and SvelteKit's CSRF check refuses text/plain without a trusted Origin.
    headers: { 'content-type': 'text/plain;charset=UTF-8', origin: APP_ORIGIN },
    bodyReadUrl: `${origin}/tunnel-read-first`,
    close: () => server.stop(),
  };
});

describeEmbeddedContract('SvelteKit custom server (tunnel.middleware in front of build/handler.js)', async (sentry) => {
  const { origin, server } = await startSvelteKit('server.js', sentry);
  // No bodyReadUrl: nothing runs before the middleware here, so nothing can read the body first.
  return { url: `${origin}/tunnel`, clientAddress: '127.0.0.1', close: () => server.stop() };
});

describe('SvelteKit: a body without Content-Type (Session Replay, attachments)', () => {
  let sentry: FakeSentry;
  let route: { origin: string; server: Run };
  let custom: { origin: string; server: Run };

  beforeAll(async () => {
    sentry = await FakeSentry.start();
    [route, custom] = await Promise.all([startSvelteKit('build/index.js', sentry), startSvelteKit('server.js', sentry)]);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([route?.server.stop(), custom?.server.stop()]);
    await sentry?.close();
  });

  it('the +server.ts route refuses it with 500 body_already_read naming the fix, sending nothing', async () => {
    const res = await send({ url: `${route.origin}/tunnel`, body: replayEnvelope(sentry.dsn()) });
    expectError(res, 'body_already_read');
    expect(res.json().error).toContain('tunnel.middleware');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sentry.requests).toHaveLength(0);
  });

  it('the custom server forwards it byte for byte', async () => {
    const body = replayEnvelope(sentry.dsn());
    const res = await send({ url: `${custom.origin}/tunnel`, body });
    expect(res.status).toBe(200);
    const [arrived] = await sentry.waitForRequests(1);
    expect(arrived?.headers['content-type']).toBe('application/x-sentry-envelope');
    expect(arrived?.body.equals(body)).toBe(true);
    sentry.requests.length = 0;
  });

  it("SvelteKit's CSRF check lets text/plain through to the route from kit.csrf.trustedOrigins only, before the tunnel sees it", async () => {
    const trusted = await send({ url: `${route.origin}/tunnel`, body: replayEnvelope(sentry.dsn()), headers: { 'content-type': 'text/plain', origin: APP_ORIGIN } });
    expect(trusted.status).toBe(200);
    await sentry.waitForRequests(1);
    sentry.requests.length = 0;
    for (const origin of [undefined, 'https://evil.example']) {
      const refused = await send({ url: `${route.origin}/tunnel`, body: replayEnvelope(sentry.dsn()), headers: { 'content-type': 'text/plain', ...(origin ? { origin } : {}) } });
      expect(refused.status).toBe(403);
      expect(refused.body).toContain('Cross-site POST form submissions are forbidden');
    }
    expect(sentry.requests).toHaveLength(0);
  });

  it('the custom server hands everything but the tunnel to SvelteKit', async () => {
    const res = await send({ url: `${custom.origin}/health`, method: 'GET' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('sveltekit');
    expect(sentry.requests).toHaveLength(0);
  });
});
