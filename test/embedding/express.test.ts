// tunnel.middleware in Express 5: on a route, mounted under a path, and app-wide (where it takes only
// server.path and passes the rest on), plus the refusal when a body parser ran first.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTunnel } from '../../src/index.js';
import { contractConfig, describeEmbeddedContract } from '../helpers/embedded-contract.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { send } from '../helpers/http.js';

async function listen(app: express.Express): Promise<{ server: Server; origin: string }> {
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describeEmbeddedContract('Express app.post(path, tunnel.middleware)', async (sentry) => {
  const tunnel = createTunnel(contractConfig(sentry.dsn()));
  const app = express();
  app.post('/api/sentry-tunnel', tunnel.middleware);
  app.options('/api/sentry-tunnel', tunnel.middleware);
  app.use('/with-parser', express.text({ type: '*/*' }), tunnel.middleware);
  const { server, origin } = await listen(app);
  return {
    url: `${origin}/api/sentry-tunnel`,
    clientAddress: '127.0.0.1',
    bodyReadUrl: `${origin}/with-parser`,
    close: async () => {
      await tunnel.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});

describeEmbeddedContract("Express app.use('/tunnel', tunnel.middleware)", async (sentry) => {
  const tunnel = createTunnel(contractConfig(sentry.dsn()));
  const app = express();
  app.use('/monitoring', tunnel.middleware);
  const { server, origin } = await listen(app);
  return {
    url: `${origin}/monitoring`,
    clientAddress: '127.0.0.1',
    close: async () => {
      await tunnel.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});

describe('Express app.use(tunnel.middleware), app-wide', () => {
  let sentry: FakeSentry;
  let server: Server;
  let origin: string;
  let tunnel: ReturnType<typeof createTunnel>;

  beforeAll(async () => {
    sentry = await FakeSentry.start();
    tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() }, api: { dsn: sentry.dsn('3', 'fedcba987654') } }, log: { level: 'silent' } });
    const app = express();
    app.use(tunnel.middleware);
    app.use(express.json());
    app.post('/api/orders', (req, res) => {
      res.json({ received: req.body });
    });
    app.use('/mounted', tunnel.middleware);
    ({ server, origin } = await listen(app));
  });

  afterAll(async () => {
    await tunnel.close();
    await new Promise((resolve) => server.close(resolve));
    await sentry.close();
  });

  it('takes server.path and passes every other request to next()', async () => {
    const tunnelled = await send({ url: `${origin}/tunnel`, body: errorEnvelope(sentry.dsn()) });
    expect(tunnelled.status).toBe(200);
    await sentry.waitForRequests(1);
    const order = await send({ url: `${origin}/api/orders`, body: '{"sku":42}', headers: { 'content-type': 'application/json' } });
    expect(order.status).toBe(200);
    expect(order.json()).toEqual({ received: { sku: 42 } });
    expect(sentry.requests).toHaveLength(1);
  });

  it('takes {server.path}/<name> for a named project, and a name left after a mount path', async () => {
    sentry.requests.length = 0;
    const named = await send({ url: `${origin}/tunnel/api`, body: errorEnvelope(sentry.dsn('3', 'fedcba987654')) });
    expect(named.status).toBe(200);
    const mounted = await send({ url: `${origin}/mounted/api`, body: errorEnvelope(sentry.dsn()) });
    expect(mounted.status).toBe(403);
    expect(mounted.json()).toMatchObject({ code: 'dsn_mismatch' });
    expect(sentry.requests.map((request) => request.url)).toEqual(['/api/3/envelope/?sentry_version=7&sentry_key=fedcba987654']);
  });
});
