// The Forward contract of Upstream (dispatch() + ReplyHandler) against a fake Sentry on loopback:
// what is relayed, how each transport failure maps to the catalogue, and how aborts and failing
// request-body streams end the upstream request.
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TunnelError } from '../../src/errors.js';
import { type OutboundEnvelope, Upstream } from '../../src/upstream/upstream.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';

const OPTIONS = { timeoutMs: 10_000, connectTimeoutMs: 3_000, maxConnections: 8, forwardClientIp: false };

let sentry: FakeSentry;
let upstream: Upstream;

beforeAll(async () => {
  sentry = await FakeSentry.start();
  upstream = new Upstream(OPTIONS);
});

afterEach(() => {
  sentry.reply = {};
  sentry.cutAfterBytes = undefined;
  sentry.requests.length = 0;
});

afterAll(async () => {
  await upstream.destroy();
  await sentry.close();
});

function outbound(body: Buffer | Readable, extra: Partial<OutboundEnvelope> = {}, origin = `http://127.0.0.1:${sentry.port}`): OutboundEnvelope {
  const headers: Record<string, string> = { 'content-type': 'application/x-sentry-envelope' };
  if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
  return { project: 'web', target: { origin, path: '/api/2/envelope/' }, header: {}, headers, body, ...extra };
}

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function rejection(promise: Promise<unknown>): Promise<TunnelError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the forward to reject');
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TunnelError);
  return error as TunnelError;
}

describe('Upstream.send', () => {
  it('does not let undici swallow a throwing sink: the error is thrown again, outside undici', async () => {
    // vitest's own listener would report it as an unhandled error of the run: listen instead, for this test.
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    try {
      const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
      let told = 0;
      upstream.send(outbound(errorEnvelope(sentry.dsn('2'))), {
        replied() {
          told++;
          throw new Error('a bug in the sink');
        },
        failed() {
          told++;
        },
      });
      expect(((await uncaught) as Error).message).toBe('a bug in the sink');
      // Told once: undici's onError after the throw found the call settled.
      await new Promise((resolve) => setImmediate(resolve));
      expect(told).toBe(1);
    } finally {
      for (const listener of listeners) process.on('uncaughtException', listener);
    }
  });
});

describe('Upstream.forward', () => {
  it("relays Sentry's status and body, and only the allowlisted headers, repeated ones joined with \", \"", async () => {
    sentry.reply = {
      status: 429,
      // node:http writes an array value as one header line per element.
      headers: { 'x-sentry-rate-limits': ['60:error:key', '10:transaction:key'] as unknown as string, 'retry-after': '60', 'set-cookie': 'a=b', 'x-other': '1' },
      body: '{"detail":"slow down"}',
    };
    const body = errorEnvelope(sentry.dsn('2'));
    const reply = await upstream.forward(outbound(body));
    expect(reply.status).toBe(429);
    expect(reply.body.toString()).toBe('{"detail":"slow down"}');
    expect(reply.headers).toEqual({ 'content-type': 'application/json', 'retry-after': '60', 'x-sentry-rate-limits': '60:error:key, 10:transaction:key' });
    expect(sentry.requests[0]?.body.equals(body)).toBe(true);
  });

  it('matches the allowlisted names in any case, and no other name of the same length', async () => {
    sentry.reply = {
      status: 200,
      // Same lengths as X-Sentry-Error (14), Retry-After (11) and Content-Type (12), but other names.
      headers: { 'X-SENTRY-RATE-LIMITS': '60:error:key', 'Retry-After': '7', 'X-Sentry-Errox': 'no', 'Retry-Aftex': '9', 'Content-Typf': 'x' },
      body: '{}',
    };
    const reply = await upstream.forward(outbound(errorEnvelope(sentry.dsn('2'))));
    expect(reply.headers).toEqual({ 'content-type': 'application/json', 'retry-after': '7', 'x-sentry-rate-limits': '60:error:key' });
  });

  it('sends a streamed body to the end, byte for byte', async () => {
    const body = Buffer.concat([errorEnvelope(sentry.dsn('2')), Buffer.alloc(3 * 1024 * 1024, 7)]);
    const reply = await upstream.forward(outbound(Readable.from([body.subarray(0, 100_000), body.subarray(100_000)])));
    expect(reply.status).toBe(200);
    expect(sentry.requests[0]?.body.equals(body)).toBe(true);
  });

  it('refuses a redirect with upstream_redirect, and the next forward on the pool still works', async () => {
    sentry.reply = { status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' }, body: 'moved' };
    expect((await rejection(upstream.forward(outbound(errorEnvelope(sentry.dsn('2')))))).code).toBe('upstream_redirect');
    sentry.reply = {};
    expect((await upstream.forward(outbound(errorEnvelope(sentry.dsn('2'))))).status).toBe(200);
  });

  it('refuses an answer over 1 MiB with upstream_unavailable', async () => {
    sentry.reply = { body: 'x'.repeat(1024 * 1024 + 1) };
    expect((await rejection(upstream.forward(outbound(errorEnvelope(sentry.dsn('2')))))).code).toBe('upstream_unavailable');
  });

  it('maps a Sentry slower than timeoutMs to upstream_timeout', async () => {
    const impatient = new Upstream({ ...OPTIONS, timeoutMs: 100 });
    try {
      sentry.reply = { delayMs: 1_000 };
      const error = await rejection(impatient.forward(outbound(errorEnvelope(sentry.dsn('2')))));
      expect(error.code).toBe('upstream_timeout');
      expect((error.cause as { code?: string }).code).toBe('UND_ERR_HEADERS_TIMEOUT');
    } finally {
      await impatient.destroy();
    }
  });

  it('once closed, refuses forwards with upstream_unavailable, to an origin it used and to a new one, and sends nothing', async () => {
    const closing = new Upstream(OPTIONS);
    expect((await closing.forward(outbound(errorEnvelope(sentry.dsn('2'))))).status).toBe(200);
    await closing.close();
    sentry.requests.length = 0;
    const other = await closedPort();
    for (const origin of [`http://127.0.0.1:${sentry.port}`, `http://127.0.0.1:${other}`]) {
      const error = await rejection(closing.forward(outbound(errorEnvelope(sentry.dsn('2')), {}, origin)));
      expect(error.code).toBe('upstream_unavailable');
      expect((error.cause as { code?: string }).code).toMatch(/^UND_ERR_(CLOSED|DESTROYED)$/);
    }
    expect(sentry.requests).toHaveLength(0);
    await closing.destroy();
  });

  it('maps a refused connection and a reset one to upstream_unavailable', async () => {
    const closed = await closedPort();
    const refused = await rejection(upstream.forward(outbound(errorEnvelope(sentry.dsn('2')), {}, `http://127.0.0.1:${closed}`)));
    expect(refused.code).toBe('upstream_unavailable');
    expect((refused.cause as { code?: string }).code).toBe('ECONNREFUSED');

    sentry.reply = { reset: true };
    expect((await rejection(upstream.forward(outbound(errorEnvelope(sentry.dsn('2')))))).code).toBe('upstream_unavailable');
  });

  it('aborts the upstream request when the body stream fails mid-upload, and rejects with its error', async () => {
    const source = new PassThrough();
    const forwarded = upstream.forward(outbound(source));
    source.write(errorEnvelope(sentry.dsn('2')));
    source.write(Buffer.alloc(64 * 1024, 1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    source.destroy(new TunnelError('request_aborted'));
    expect((await rejection(forwarded)).code).toBe('request_aborted');
    // Sentry never saw a complete request: the half-sent one was cut off, not ended.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sentry.requests).toHaveLength(0);
    expect((await upstream.forward(outbound(errorEnvelope(sentry.dsn('2'))))).status).toBe(200);
  });

  it('destroys a body stream it never started sending when the connection is refused', async () => {
    const source = new PassThrough();
    source.write(errorEnvelope(sentry.dsn('2')));
    const error = await rejection(upstream.forward(outbound(source, {}, `http://127.0.0.1:${await closedPort()}`)));
    expect(error.code).toBe('upstream_unavailable');
    expect(source.destroyed).toBe(true);
  });

  it('rejects promptly when the signal aborts while Sentry has not answered yet', async () => {
    sentry.reply = { delayMs: 3_000 };
    const controller = new AbortController();
    const started = performance.now();
    const forwarded = upstream.forward(outbound(errorEnvelope(sentry.dsn('2')), { signal: controller.signal }));
    await sentry.waitForRequests(1);
    controller.abort();
    const error = await rejection(forwarded);
    expect(error.code).toBe('upstream_unavailable');
    expect((error.cause as Error).name).toBe('AbortError');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('rejects promptly when the signal aborts mid-answer (headers in, body still coming)', async () => {
    const stalled = createHttpServer((req, res) => {
      req.resume();
      req.once('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"id":');
      });
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    try {
      const controller = new AbortController();
      const started = performance.now();
      const forwarded = upstream.forward(outbound(errorEnvelope(sentry.dsn('2')), { signal: controller.signal }, `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`));
      setTimeout(() => controller.abort(), 200);
      const error = await rejection(forwarded);
      expect((error.cause as Error).name).toBe('AbortError');
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      stalled.closeAllConnections();
      await new Promise((resolve) => stalled.close(resolve));
    }
  });

  it('sends nothing when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(upstream.forward(outbound(errorEnvelope(sentry.dsn('2')), { signal: controller.signal })));
    expect(error.code).toBe('upstream_unavailable');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sentry.requests).toHaveLength(0);
  });
});
