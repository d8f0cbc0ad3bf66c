// tunnel.fetch inside Hono on @hono/node-server, the client address taken from the node socket.
import type { AddressInfo } from 'node:net';
import { type HttpBindings, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createTunnel } from '../../src/index.js';
import { contractConfig, describeEmbeddedContract } from '../helpers/embedded-contract.js';

describeEmbeddedContract('Hono on @hono/node-server', async (sentry) => {
  const tunnel = createTunnel(contractConfig(sentry.dsn()));
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.on(['POST', 'OPTIONS'], '/tunnel', (c) => tunnel.fetch(c.req.raw, { clientAddress: c.env.incoming.socket.remoteAddress }));
  app.post('/read-first', async (c) => {
    await c.req.raw.text();
    return tunnel.fetch(c.req.raw, { clientAddress: c.env.incoming.socket.remoteAddress });
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/tunnel`,
    clientAddress: '127.0.0.1',
    bodyReadUrl: `${origin}/read-first`,
    close: async () => {
      await tunnel.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});
