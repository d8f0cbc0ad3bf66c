// Sentry's answer on its way back: relayed whole however it is chunked, and refused when it is far
// larger than any answer Sentry gives (ReplyHandler in src/upstream/reply-handler.ts).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { send } from '../helpers/http.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let sentry: FakeSentry;
let tunnel: TestTunnel;
let url: string;

beforeAll(async () => {
  sentry = await FakeSentry.start();
  tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } } });
  url = `http://127.0.0.1:${tunnel.address.port}/tunnel`;
});

afterEach(() => {
  sentry.reply = {};
});

afterAll(async () => {
  await tunnel.shutdown();
  await sentry.close();
});

describe("Sentry's answer", () => {
  it('reaches the client byte for byte when it arrives in many chunks', async () => {
    const answer = JSON.stringify({ id: '0'.repeat(32), detail: 'x'.repeat(300 * 1024) });
    sentry.reply = { body: answer };
    const res = await send({ url, body: errorEnvelope(sentry.dsn('2')) });
    expect(res.status).toBe(200);
    expect(res.body).toBe(answer);
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(answer)));
  });

  it('over 1 MiB is refused with 502 upstream_unavailable, and the tunnel keeps serving', async () => {
    sentry.reply = { body: 'x'.repeat(1024 * 1024 + 1) };
    const refused = await send({ url, body: errorEnvelope(sentry.dsn('2')) });
    expect(refused.status).toBe(502);
    expect(refused.json().code).toBe('upstream_unavailable');
    expect(tunnel.logs().some((line) => line.code === 'upstream_unavailable' && line.status === 502)).toBe(true);

    sentry.reply = {};
    const next = await send({ url, body: errorEnvelope(sentry.dsn('2')) });
    expect(next.status).toBe(200);
  });
});
