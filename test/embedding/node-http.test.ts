// tunnel.middleware as a whole node:http server: it routes by server.path as the daemon does, and
// answers 404 from the catalogue for anything else.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTunnel } from '../../src/index.js';
import { contractConfig, describeEmbeddedContract, expectError } from '../helpers/embedded-contract.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { send } from '../helpers/http.js';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describeEmbeddedContract('http.createServer(tunnel.middleware)', async (sentry) => {
  const tunnel = createTunnel(contractConfig(sentry.dsn()));
  const server = createServer(tunnel.middleware);
  const origin = await listen(server);
  return {
    url: `${origin}/tunnel`,
    clientAddress: '127.0.0.1',
    close: async () => {
      await tunnel.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});

describe('http.createServer(tunnel.middleware) routing', () => {
  let sentry: FakeSentry;
  let server: Server;
  let origin: string;
  const tunnel = () => created;
  let created: ReturnType<typeof createTunnel>;

  beforeAll(async () => {
    sentry = await FakeSentry.start();
    created = createTunnel({ projects: { web: { dsn: sentry.dsn() }, api: { dsn: sentry.dsn('3', 'fedcba987654') } }, log: { level: 'silent' } });
    server = createServer(tunnel().middleware);
    origin = await listen(server);
  });

  afterAll(async () => {
    await tunnel().close();
    await new Promise((resolve) => server.close(resolve));
    await sentry.close();
  });

  it('answers 404 not_found, naming server.path, for any other path', async () => {
    const res = await send({ url: `${origin}/elsewhere`, body: errorEnvelope(sentry.dsn()) });
    expectError(res, 'not_found');
    expect(res.json().error).toContain('/tunnel');
    expect(sentry.requests).toHaveLength(0);
  });

  it('takes {server.path}/<name> for a named project', async () => {
    const res = await send({ url: `${origin}/tunnel/api`, body: errorEnvelope(sentry.dsn('3', 'fedcba987654')) });
    expect(res.status).toBe(200);
    expect((await sentry.waitForRequests(1))[0]?.url).toBe('/api/3/envelope/?sentry_version=7&sentry_key=fedcba987654');
  });
});

describe('http.createServer(tunnel.middleware) with a configuration read on first use', () => {
  it('answers 500 internal_error, and keeps serving, when that configuration is invalid', async () => {
    const tunnel = createTunnel(() => ({ projects: { web: { dsn: 'not a dsn' } }, log: { level: 'silent' as const } }), {
      logger: (await import('../../src/observability/logger.js')).createLogger({ level: 'silent', format: 'json', requests: 'off', summaryIntervalMs: 60_000 }),
    });
    const server = createServer(tunnel.middleware);
    const origin = await listen(server);
    try {
      for (let i = 0; i < 2; i++) {
        const res = await send({ url: `${origin}/tunnel`, body: 'x' });
        expectError(res, 'internal_error');
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
