// /healthz and /readyz for orchestrators: readiness flips to 503 as soon as shutdown starts, while
// in-flight requests are still being finished and liveness stays as it was.
import { connect } from 'node:net';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let fake: FakeSentry;
let tunnel: TestTunnel | undefined;

beforeEach(async () => {
  fake = await FakeSentry.start();
});

afterEach(async () => {
  await tunnel?.shutdown();
  tunnel = undefined;
  await fake.close();
});

/** A connection opened now (as a kubelet's would be) whose request is sent later; resolves to the raw response. */
async function openProbe(port: number): Promise<{ send: (path: string) => Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  let raw = '';
  socket.on('data', (chunk: Buffer) => {
    raw += chunk.toString();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return {
    async send(path) {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await closed;
      return raw;
    },
  };
}

function openConnections(tunnel: TestTunnel): Promise<number> {
  return new Promise((resolve, reject) => tunnel.server.getConnections((error, n) => (error ? reject(error) : resolve(n))));
}

/** Waits (bounded) until the server has accepted `count` connections, so none is still in the listen backlog. */
async function acceptedConnections(tunnel: TestTunnel, count: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if ((await openConnections(tunnel)) >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the server never accepted ${count} connections`);
}

it('answers ready, then 503 shutting_down once shutdown begins, while in-flight requests finish', async () => {
  fake.reply = { delayMs: 600 };
  tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn('2') } } });
  const base = `http://127.0.0.1:${tunnel.address.port}`;
  const ready = await fetch(`${base}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready' });

  // A request in flight keeps the tunnel draining. Connections accepted before shutdown and still
  // waiting for a request are not idle keep-alives, so they stay open and are answered during the drain.
  const inFlight = tunnel.post(errorEnvelope(fake.dsn('2')));
  await fake.waitForRequests(1);
  const before = await openConnections(tunnel);
  const readiness = await openProbe(tunnel.address.port);
  const liveness = await openProbe(tunnel.address.port);
  await acceptedConnections(tunnel, before + 2);
  const stopped = tunnel.shutdown();

  const notReady = await readiness.send('/readyz');
  expect(notReady).toMatch(/^HTTP\/1\.1 503 /);
  expect(notReady).toMatch(/connection: close/i);
  expect(notReady).toContain('"code":"shutting_down"');
  const alive = await liveness.send('/healthz');
  expect(alive).toMatch(/^HTTP\/1\.1 200 /);
  expect(alive).toContain('{"status":"ok"}');

  expect((await inFlight).status).toBe(200);
  await stopped;
  tunnel = undefined;
});
