// The request contract every way of embedding the tunnel must keep, run against a real app on
// loopback: byte-exact bytes, encodings untouched, the allowlist, CORS, limits, Sentry's rate-limit
// answers and the client's real address. Each framework's test file starts its app and calls this.
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { ERRORS } from '../../src/errors.js';
import { allByteValues, envelope, errorEnvelope, eventId } from './envelopes.js';
import { FakeSentry } from './fake-sentry.js';
import { type RawRequest, type RawResponse, send as sendRaw } from './http.js';

export const APP_ORIGIN = 'https://app.example.com';

export interface EmbeddedApp {
  /** Where the browser SDK posts (the app's tunnel route). */
  readonly url: string;
  /**
   * The client address Sentry must see in X-Forwarded-For; undefined where the app cannot know it
   * (a Next.js App Router route has no socket): then no X-Forwarded-For at all may reach Sentry.
   */
  readonly clientAddress: string | undefined;
  /**
   * Headers every request carries unless the test sets them itself, as a browser's requests do: for an
   * app whose framework needs them (a SvelteKit route gets no body without a Content-Type, and its CSRF
   * check refuses a text/plain POST without an Origin). By default requests go as the test writes them.
   */
  readonly headers?: Readonly<Record<string, string>>;
  /** A route of the app whose framework reads the body before the tunnel, when it can be set up. */
  readonly bodyReadUrl?: string;
  close(): Promise<void>;
}

/** The tunnel configuration the contract expects (the app passes it to createTunnel). */
export function contractConfig(dsn: string): ConfigInput {
  return {
    projects: { web: { dsn } },
    cors: { origins: [APP_ORIGIN] },
    limits: { maxEnvelopeBytes: 64 * 1024, maxDecodedBytes: 256 * 1024 },
    log: { level: 'silent' },
  };
}

export function expectError(res: RawResponse, code: keyof typeof ERRORS): void {
  expect(res.status).toBe(ERRORS[code].status);
  expect(res.json()).toMatchObject({ code, error: expect.any(String) });
}

export function describeEmbeddedContract(name: string, start: (sentry: FakeSentry) => Promise<EmbeddedApp>): void {
  describe(`${name}: the tunnel's request contract`, () => {
    let sentry: FakeSentry;
    let app: EmbeddedApp;

    beforeAll(async () => {
      sentry = await FakeSentry.start();
      app = await start(sentry);
    }, 120_000);

    const send = (request: RawRequest): Promise<RawResponse> => (app.headers ? sendRaw({ ...request, headers: { ...app.headers, ...request.headers } }) : sendRaw(request));

    afterEach(() => {
      sentry.requests.length = 0;
      sentry.reply = {};
    });

    afterAll(async () => {
      await app?.close();
      await sentry?.close();
    });

    it('forwards an event with a binary attachment byte for byte to the configured project', async () => {
      const id = eventId();
      const body = envelope({ event_id: id, dsn: sentry.dsn() }, [
        { type: 'event', payload: { event_id: id, message: 'embedded' } },
        { type: 'attachment', payload: allByteValues(), withLength: true, headers: { filename: 'bytes.bin' } },
      ]);
      const res = await send({ url: app.url, body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      expect(res.status).toBe(200);
      expect(res.json()).toEqual({ id });
      const [arrived] = await sentry.waitForRequests(1);
      expect(arrived?.url).toBe('/api/2/envelope/?sentry_version=7&sentry_key=abc123def456');
      expect(arrived?.body.equals(body)).toBe(true);
    });

    it('passes a gzip body on with its Content-Encoding untouched', async () => {
      const gzipped = gzipSync(errorEnvelope(sentry.dsn()));
      const res = await send({ url: app.url, body: gzipped, headers: { 'content-encoding': 'gzip', 'content-type': 'application/x-sentry-envelope' } });
      expect(res.status).toBe(200);
      const [arrived] = await sentry.waitForRequests(1);
      expect(arrived?.headers['content-encoding']).toBe('gzip');
      expect(arrived?.body.equals(gzipped)).toBe(true);
    });

    it('refuses a DSN it does not forward to with 403 dsn_not_allowed, sending nothing', async () => {
      const res = await send({ url: app.url, body: errorEnvelope('https://abc123@o1.ingest.sentry.io/999') });
      expectError(res, 'dsn_not_allowed');
      expect(sentry.requests).toHaveLength(0);
    });

    it('answers a CORS preflight from an allowed origin and refuses one from elsewhere', async () => {
      const preflight = { 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' };
      const allowed = await send({ url: app.url, method: 'OPTIONS', headers: { origin: APP_ORIGIN, ...preflight } });
      expect(allowed.status).toBe(204);
      expect(allowed.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
      expect(allowed.headers['access-control-allow-methods']).toContain('POST');
      const refused = await send({ url: app.url, method: 'OPTIONS', headers: { origin: 'https://evil.example', ...preflight } });
      expectError(refused, 'origin_not_allowed');
      const post = await send({ url: app.url, body: errorEnvelope(sentry.dsn()), headers: { origin: APP_ORIGIN } });
      expect(post.status).toBe(200);
      expect(post.headers['access-control-expose-headers']).toContain('X-Sentry-Rate-Limits');
    });

    it('refuses an envelope over limits.maxEnvelopeBytes with 413, sending nothing', async () => {
      const res = await send({ url: app.url, body: envelope({ dsn: sentry.dsn() }, [{ type: 'attachment', payload: Buffer.alloc(80 * 1024, 1), withLength: true }]) });
      expectError(res, 'envelope_too_large');
      expect(sentry.requests).toHaveLength(0);
    });

    it("sends Sentry the client's real address, never the X-Forwarded-For the client sent", async () => {
      const res = await send({ url: app.url, body: errorEnvelope(sentry.dsn()), headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(res.status).toBe(200);
      const [arrived] = await sentry.waitForRequests(1);
      expect(arrived?.headers['x-forwarded-for']).toBe(app.clientAddress);
    });

    it('refuses a body the framework read first with 500 body_already_read, sending nothing', async (context) => {
      if (!app.bodyReadUrl) return context.skip();
      const res = await send({ url: app.bodyReadUrl, body: errorEnvelope(sentry.dsn()), headers: { 'content-type': 'text/plain' } });
      expectError(res, 'body_already_read');
      expect(sentry.requests).toHaveLength(0);
    });

    // Last: the tunnel then holds the project back until the limit ends.
    it("relays Sentry's 429 with X-Sentry-Rate-Limits and Retry-After", async () => {
      sentry.reply = { status: 429, headers: { 'x-sentry-rate-limits': '60:error:organization', 'retry-after': '60' }, body: '' };
      const res = await send({ url: app.url, body: errorEnvelope(sentry.dsn()), headers: { origin: APP_ORIGIN } });
      expect(res.status).toBe(429);
      expect(res.headers['x-sentry-rate-limits']).toBe('60:error:organization');
      expect(res.headers['retry-after']).toBe('60');
    });
  });
}
