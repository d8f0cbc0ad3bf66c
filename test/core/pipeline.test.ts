// The request contract end to end: a real tunnel on loopback forwarding to a fake Sentry.
import { connect, createServer } from 'node:net';
import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';
import { allByteValues, envelope, errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { send } from '../helpers/http.js';
import { waitForLog } from '../helpers/log-lines.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let sentry: FakeSentry;
let other: FakeSentry;
let tunnel: TestTunnel;
let base: string;

beforeAll(async () => {
  sentry = await FakeSentry.start();
  other = await FakeSentry.start();
  tunnel = await startTestTunnel({
    projects: { web: { dsn: sentry.dsn('2') }, api: { dsn: sentry.dsn('3', 'fedcba987654') } },
    limits: { maxEnvelopeBytes: 64 * 1024, maxDecodedBytes: 256 * 1024, maxHeaderLineBytes: 1024 },
    upstream: { timeoutMs: 400 },
  });
  base = `http://127.0.0.1:${tunnel.address.port}`;
});

afterEach(() => {
  sentry.requests.length = 0;
  sentry.reply = {};
});

afterAll(async () => {
  await tunnel.shutdown();
  await sentry.close();
  await other.close();
});

function expectError(res: { status: number; json(): Record<string, unknown> }, code: keyof typeof ERRORS): void {
  expect(res.status).toBe(ERRORS[code].status);
  const body = res.json();
  expect(body.code).toBe(code);
  expect(typeof body.error).toBe('string');
}

describe('forwarding', () => {
  it('forwards an envelope for a configured DSN to its ingest endpoint and returns Sentry’s answer', async () => {
    const body = errorEnvelope(sentry.dsn('2'));
    const res = await send({ url: `${base}/tunnel`, body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    expect(res.status).toBe(200);
    expect(res.json().id).toMatch(/^[0-9a-f]{32}$/);
    const [arrived] = await sentry.waitForRequests(1);
    expect(arrived?.url).toBe('/api/2/envelope/?sentry_version=7&sentry_key=abc123def456');
    expect(arrived?.body.equals(body)).toBe(true);
    expect(arrived?.headers['content-type']).toBe('text/plain;charset=UTF-8');
  });

  it('defaults Content-Type to application/x-sentry-envelope when the client sent none', async () => {
    const res = await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2')) });
    expect(res.status).toBe(200);
    expect(sentry.requests[0]?.headers['content-type']).toBe('application/x-sentry-envelope');
  });

  it('forwards a length-prefixed binary item holding all 256 byte values byte for byte', async () => {
    const body = envelope({ event_id: 'a'.repeat(32), dsn: sentry.dsn('2') }, [
      { type: 'replay_recording', payload: allByteValues(8), withLength: true },
      { type: 'attachment', payload: Buffer.from('\r\n\n\r\0'), withLength: true, headers: { filename: 'x.bin' } },
    ]);
    const res = await send({ url: `${base}/tunnel`, body });
    expect(res.status).toBe(200);
    expect(sentry.requests[0]?.body.equals(body)).toBe(true);
  });

  it('streams a body larger than the buffering threshold unchanged', async () => {
    const big = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } } });
    try {
      const payload = Buffer.concat(Array.from({ length: 1200 }, () => allByteValues(1)));
      const body = envelope({ dsn: sentry.dsn('2') }, [{ type: 'attachment', payload, withLength: true }]);
      const res = await send({ url: `http://127.0.0.1:${big.address.port}/tunnel`, chunks: [body.subarray(0, 1000), body.subarray(1000)] });
      expect(res.status).toBe(200);
      expect(sentry.requests[0]?.body.equals(body)).toBe(true);
    } finally {
      await big.shutdown();
    }
  });

  it.each([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ] as const)('forwards a %s body with its Content-Encoding, bytes untouched', async (encoding, compress) => {
    const body = compress(envelope({ dsn: sentry.dsn('2') }, [{ type: 'event', payload: { message: 'x'.repeat(5000) } }]));
    const res = await send({ url: `${base}/tunnel`, body, headers: { 'content-encoding': encoding } });
    expect(res.status).toBe(200);
    expect(sentry.requests[0]?.headers['content-encoding']).toBe(encoding);
    expect(sentry.requests[0]?.body.equals(body)).toBe(true);
  });

  it('accepts a DSN that differs only in form (host case, default port, secret, trailing slash)', async () => {
    const dsn = sentry.dsn('2').replace('abc123def456@', 'abc123def456:secret@').replace('127.0.0.1', '127.0.0.1');
    const res = await send({ url: `${base}/tunnel`, body: errorEnvelope(`${dsn}`) });
    expect(res.status).toBe(200);
  });

  it('routes {path}/{name} to that project when the DSN matches', async () => {
    const res = await send({ url: `${base}/tunnel/api`, body: errorEnvelope(sentry.dsn('3', 'fedcba987654')) });
    expect(res.status).toBe(200);
    expect(sentry.requests[0]?.url).toBe('/api/3/envelope/?sentry_version=7&sentry_key=fedcba987654');
  });

  it('answers a header-only envelope without trailing newline', async () => {
    const res = await send({ url: `${base}/tunnel`, body: JSON.stringify({ dsn: sentry.dsn('2') }) });
    expect(res.status).toBe(200);
  });
});

describe('a failing forward', () => {
  it('answers 500 internal_error when a forward wrapper throws before returning a promise, and keeps serving', async () => {
    const broken = await startTestTunnel(
      { projects: { web: { dsn: sentry.dsn('2') } } },
      {
        wrapForward: (forward) => (envelope) => {
          if (envelope.header.release === 'break') throw new TypeError('not a promise');
          return forward(envelope);
        },
      },
    );
    try {
      const url = `http://127.0.0.1:${broken.address.port}/tunnel`;
      const body = Buffer.from(`${JSON.stringify({ dsn: sentry.dsn('2'), release: 'break' })}\n{"type":"event"}\n{}\n`);
      expectError(await send({ url, body }), 'internal_error');
      expect((await send({ url, body: errorEnvelope(sentry.dsn('2')) })).status).toBe(200);
      expect(broken.logs().filter((line) => line.msg === 'request').map((line) => line.status)).toEqual([500, 200]);
    } finally {
      await broken.shutdown();
    }
  });
});

describe('the allowlist', () => {
  it('refuses a DSN that is not configured with 403 dsn_not_allowed and opens no connection to its host', async () => {
    const before = other.connections;
    const res = await send({ url: `${base}/tunnel`, body: errorEnvelope(other.dsn('2')) });
    expectError(res, 'dsn_not_allowed');
    expect(other.connections).toBe(before);
    expect(other.requests).toHaveLength(0);
  });

  it('refuses a configured host with another project id or key', async () => {
    expectError(await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('9')) }), 'dsn_not_allowed');
    expectError(await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2', 'otherkey')) }), 'dsn_not_allowed');
    expect(sentry.requests).toHaveLength(0);
  });

  it('with many projects (looked up, not compared one by one) sends each DSN to its own project and refuses others', async () => {
    const projects = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`p${i}`, { dsn: sentry.dsn(String(i + 10)) }]));
    const many = await startTestTunnel({ projects });
    try {
      const url = `http://127.0.0.1:${many.address.port}/tunnel`;
      expect((await send({ url, body: errorEnvelope(sentry.dsn('10')) })).status).toBe(200);
      expect((await send({ url, body: errorEnvelope(sentry.dsn('21')) })).status).toBe(200);
      expectError(await send({ url, body: errorEnvelope(sentry.dsn('22')) }), 'dsn_not_allowed');
      const arrived = await sentry.waitForRequests(2);
      expect(arrived.map((request) => request.url.split('?')[0])).toEqual(['/api/10/envelope/', '/api/21/envelope/']);
    } finally {
      await many.shutdown();
    }
  });

  it('answers 403 dsn_mismatch when the DSN belongs to another project than the URL names', async () => {
    expectError(await send({ url: `${base}/tunnel/api`, body: errorEnvelope(sentry.dsn('2')) }), 'dsn_mismatch');
  });

  it('answers 404 unknown_project for an unknown project name', async () => {
    expectError(await send({ url: `${base}/tunnel/nope`, body: errorEnvelope(sentry.dsn('2')) }), 'unknown_project');
  });
});

describe('bad input', () => {
  it.each([
    ['empty body', '', 'empty_body'],
    ['first line not JSON', 'hello\n{}', 'invalid_envelope_header'],
    ['first line a JSON array', '[1,2]\n', 'invalid_envelope_header'],
    ['no dsn', '{"event_id":"abc"}\n{"type":"event"}\n{}', 'missing_dsn'],
    ['unparseable dsn', '{"dsn":"not a dsn"}\n', 'invalid_dsn'],
    ['header line over maxHeaderLineBytes', `{"dsn":"x","pad":"${'p'.repeat(2000)}"}\n`, 'header_too_large'],
  ] as const)('%s → 400 %s, nothing forwarded', async (_name, body, code) => {
    expectError(await send({ url: `${base}/tunnel`, body }), code);
    expect(sentry.requests).toHaveLength(0);
  });

  it('refuses a Content-Length over maxEnvelopeBytes with 413 before reading the body', async () => {
    const res = await send({ url: `${base}/tunnel`, headers: { 'content-length': 1024 * 1024 }, body: '' }).catch((error: Error) => error);
    // The tunnel answers at once and closes; the body is never read.
    if (res instanceof Error) throw res;
    expectError(res, 'envelope_too_large');
  });

  it('refuses a chunked body that grows past maxEnvelopeBytes with 413, nothing forwarded', async () => {
    const header = Buffer.from(`${JSON.stringify({ dsn: sentry.dsn('2') })}\n`);
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const res = await send({ url: `${base}/tunnel`, chunks: [header, chunk, chunk, chunk, chunk, chunk] });
    expectError(res, 'envelope_too_large');
    expect(sentry.requests).toHaveLength(0);
  });

  it('refuses a gzip body that decodes past maxDecodedBytes (zip bomb) with 413', async () => {
    const body = gzipSync(Buffer.concat([Buffer.from(`${JSON.stringify({ dsn: sentry.dsn('2') })}\n`), Buffer.alloc(1024 * 1024)]));
    expect(body.length).toBeLessThan(64 * 1024);
    expectError(await send({ url: `${base}/tunnel`, body, headers: { 'content-encoding': 'gzip' } }), 'envelope_too_large');
    expect(sentry.requests).toHaveLength(0);
  });

  it('refuses an unknown Content-Encoding with 415', async () => {
    expectError(await send({ url: `${base}/tunnel`, body: 'x', headers: { 'content-encoding': 'zstd' } }), 'unsupported_encoding');
  });

  it('refuses corrupt gzip data with 400 invalid_body_encoding', async () => {
    const good = gzipSync(errorEnvelope(sentry.dsn('2')));
    const corrupt = Buffer.concat([good.subarray(0, 20), Buffer.alloc(40, 0xff)]);
    expectError(await send({ url: `${base}/tunnel`, body: corrupt, headers: { 'content-encoding': 'gzip' } }), 'invalid_body_encoding');
    expect(sentry.requests).toHaveLength(0);
  });

  it('answers 405 with Allow for other methods on the tunnel path', async () => {
    const res = await send({ url: `${base}/tunnel`, method: 'GET' });
    expectError(res, 'method_not_allowed');
    expect(res.headers.allow).toBe('POST, OPTIONS');
  });

  it('answers 404 not_found elsewhere', async () => {
    expectError(await send({ url: `${base}/api/2/envelope/`, body: 'x' }), 'not_found');
    expectError(await send({ url: `${base}/tunnel/a/b`, body: 'x' }), 'not_found');
  });

  it('keeps serving after bad input', async () => {
    expect((await send({ url: `${base}/healthz`, method: 'GET' })).status).toBe(200);
  });
});

describe('headers', () => {
  it('forwards only the allowed request headers and the real client address', async () => {
    const res = await send({
      url: `${base}/tunnel`,
      body: errorEnvelope(sentry.dsn('2')),
      headers: {
        'user-agent': 'Mozilla/5.0 test',
        origin: 'https://app.example.com',
        'sec-ch-ua': '"Chromium";v="140"',
        'sec-ch-ua-platform': '"Linux"',
        'sec-ch-ua-platform-version': '"6.8.0"',
        'sec-ch-ua-model': '"Pixel 9"',
        'sec-ch-ua-mobile': '?0',
        'sec-ch-ua-full-version-list': '"Chromium";v="140.0.7339.80"',
        cookie: 'session=secret',
        authorization: 'Bearer secret',
        'x-forwarded-for': '203.0.113.9',
        'x-sentry-forwarded-for': '203.0.113.10',
        'cf-connecting-ip': '203.0.113.11',
        'x-vercel-forwarded-for': '203.0.113.12',
        'x-real-ip': '203.0.113.13',
        'x-custom': 'nope',
      },
    });
    expect(res.status).toBe(200);
    const headers = sentry.requests[0]?.headers ?? {};
    expect(headers['user-agent']).toBe('Mozilla/5.0 test');
    expect(headers.origin).toBe('https://app.example.com');
    expect(headers['sec-ch-ua']).toBe('"Chromium";v="140"');
    expect(headers['sec-ch-ua-platform']).toBe('"Linux"');
    expect(headers['sec-ch-ua-platform-version']).toBe('"6.8.0"');
    expect(headers['sec-ch-ua-model']).toBe('"Pixel 9"');
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    // Hints Sentry does not read stay behind, as every header not named above does.
    for (const name of ['sec-ch-ua-mobile', 'sec-ch-ua-full-version-list', 'cookie', 'authorization', 'x-sentry-forwarded-for', 'cf-connecting-ip', 'x-vercel-forwarded-for', 'x-real-ip', 'x-custom']) {
      expect(headers[name], name).toBeUndefined();
    }
  });

  it('passes back only Content-Type, Retry-After, X-Sentry-Rate-Limits and X-Sentry-Error', async () => {
    sentry.reply = {
      status: 429,
      headers: {
        'retry-after': '60',
        // A category no later test sends: the tunnel honours the limit for the rest of this file.
        'x-sentry-rate-limits': '60:profile:organization',
        'x-sentry-error': 'limited',
        'set-cookie': 'a=b',
        'strict-transport-security': 'max-age=1',
        'x-powered-by': 'relay',
      },
      body: '{"detail":"rate limited"}',
    };
    const res = await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2')) });
    expect(res.status).toBe(429);
    expect(res.body).toBe('{"detail":"rate limited"}');
    expect(res.headers['retry-after']).toBe('60');
    expect(res.headers['x-sentry-rate-limits']).toBe('60:profile:organization');
    expect(res.headers['x-sentry-error']).toBe('limited');
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});

describe('upstream failures', () => {
  it('answers 504 upstream_timeout when Sentry does not answer within upstream.timeoutMs', async () => {
    sentry.reply = { delayMs: 1500 };
    expectError(await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2')) }), 'upstream_timeout');
  });

  it('answers 502 upstream_unavailable when Sentry resets the connection', async () => {
    sentry.reply = { reset: true };
    expectError(await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2')) }), 'upstream_unavailable');
  });

  it('answers 502 upstream_redirect and never follows a 3xx', async () => {
    sentry.reply = { status: 302, headers: { location: `http://127.0.0.1:${other.port}/` } };
    expectError(await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2')) }), 'upstream_redirect');
    expect(other.requests).toHaveLength(0);
  });

  it('answers 502 upstream_unavailable when nothing listens at the DSN host', async () => {
    const port = await closedPort();
    const dsn = `http://abc@127.0.0.1:${port}/7`;
    const lonely = await startTestTunnel({ projects: { gone: { dsn } }, upstream: { connectTimeoutMs: 1000 } });
    try {
      const res = await send({ url: `http://127.0.0.1:${lonely.address.port}/tunnel`, body: errorEnvelope(dsn) });
      expectError(res, 'upstream_unavailable');
      const line = lonely.logs().find((entry) => entry.msg === 'request');
      expect(line?.level).toBe(50);
      expect(line?.cause).toMatch(/ECONNREFUSED/);
    } finally {
      await lonely.shutdown();
    }
  });
});

describe('CORS', () => {
  it('answers a preflight with 204 and the CORS headers', async () => {
    const res = await send({
      url: `${base}/tunnel`,
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers['access-control-allow-methods']).toBe('POST, OPTIONS');
    expect(res.headers['access-control-allow-headers']).toBe('content-type');
    expect(Number(res.headers['access-control-max-age'])).toBeGreaterThan(0);
    expect(res.headers.vary).toMatch(/Origin/);
  });

  it('exposes Sentry’s rate-limit headers on every POST response to a cross-origin page', async () => {
    const res = await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2')), headers: { origin: 'https://app.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers['access-control-expose-headers']).toBe('X-Sentry-Rate-Limits, Retry-After, X-Sentry-Error');
    expect(res.headers.vary).toBe('Origin');
    const refused = await send({ url: `${base}/tunnel`, body: errorEnvelope(other.dsn('2')), headers: { origin: 'https://app.example.com' } });
    expect(refused.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });

  it('refuses an origin that cors.origins does not list with 403, forwarding nothing', async () => {
    const strict = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, cors: { origins: ['https://app.example.com'] } });
    try {
      const url = `http://127.0.0.1:${strict.address.port}/tunnel`;
      expectError(await send({ url, body: errorEnvelope(sentry.dsn('2')), headers: { origin: 'https://evil.example' } }), 'origin_not_allowed');
      expectError(await send({ url, method: 'OPTIONS', headers: { origin: 'https://evil.example' } }), 'origin_not_allowed');
      expect(sentry.requests).toHaveLength(0);
      const ok = await send({ url, body: errorEnvelope(sentry.dsn('2')), headers: { origin: 'https://app.example.com' } });
      expect(ok.status).toBe(200);
    } finally {
      await strict.shutdown();
    }
  });

  it('with a long cors.origins list (looked up, not compared one by one) allows each listed origin and refuses others', async () => {
    const origins = Array.from({ length: 12 }, (_, i) => `https://app${i}.example.com`);
    const long = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, cors: { origins } });
    try {
      const url = `http://127.0.0.1:${long.address.port}/tunnel`;
      for (const origin of [origins[0]!, origins[11]!]) {
        const res = await send({ url, body: errorEnvelope(sentry.dsn('2')), headers: { origin } });
        expect(res.status).toBe(200);
        expect(res.headers['access-control-allow-origin']).toBe(origin);
      }
      expectError(await send({ url, body: errorEnvelope(sentry.dsn('2')), headers: { origin: 'https://app12.example.com' } }), 'origin_not_allowed');
    } finally {
      await long.shutdown();
    }
  });

  it('with cors.origins "*" echoes each origin, also past the 1024 it remembers', async () => {
    const any = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, cors: { origins: '*' } });
    try {
      const url = `http://127.0.0.1:${any.address.port}/tunnel`;
      const before = sentry.requests.length;
      // 1030 distinct origins fill the remembered answers and start them over; the first is asked again after that.
      const origins = [...Array.from({ length: 1030 }, (_, i) => `https://app${i}.example.com`), 'https://app0.example.com'];
      for (const origin of origins) {
        const res = await send({ url, method: 'OPTIONS', headers: { origin } });
        expect(res.headers['access-control-allow-origin']).toBe(origin);
      }
      for (const origin of ['https://app0.example.com', 'https://app1029.example.com', 'https://app1029.example.com']) {
        const res = await send({ url, body: errorEnvelope(sentry.dsn('2')), headers: { origin } });
        expect(res.status).toBe(200);
        expect(res.headers['access-control-allow-origin']).toBe(origin);
        expect(res.headers.vary).toBe('Origin');
      }
      expect(sentry.requests.length - before).toBe(3);
    } finally {
      await any.shutdown();
    }
  });

  it('sends no CORS headers when cors.origins is false', async () => {
    const none = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, cors: { origins: false } });
    try {
      const res = await send({ url: `http://127.0.0.1:${none.address.port}/tunnel`, body: errorEnvelope(sentry.dsn('2')), headers: { origin: 'https://x.example' } });
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await none.shutdown();
    }
  });
});

describe('client address', () => {
  it.each([
    [false, '127.0.0.1'],
    [true, '198.51.100.1'],
    [['127.0.0.1/32'], '203.0.113.5'],
    [['10.0.0.0/8'], '127.0.0.1'],
  ] as const)('trustProxy %j → X-Forwarded-For upstream is %s', async (trustProxy, expected) => {
    const proxied = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, server: { trustProxy: trustProxy as boolean | string[] } });
    try {
      const res = await send({
        url: `http://127.0.0.1:${proxied.address.port}/tunnel`,
        body: errorEnvelope(sentry.dsn('2')),
        headers: { 'x-forwarded-for': '198.51.100.1, 203.0.113.5' },
      });
      expect(res.status).toBe(200);
      expect(sentry.requests[0]?.headers['x-forwarded-for']).toBe(expected);
    } finally {
      await proxied.shutdown();
    }
  });

  it('sends no X-Forwarded-For when forwardClientIp is false', async () => {
    const quiet = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, upstream: { forwardClientIp: false } });
    try {
      await send({ url: `http://127.0.0.1:${quiet.address.port}/tunnel`, body: errorEnvelope(sentry.dsn('2')) });
      expect(sentry.requests[0]?.headers['x-forwarded-for']).toBeUndefined();
    } finally {
      await quiet.shutdown();
    }
  });
});

describe('health and logs', () => {
  it('answers /healthz and /readyz', async () => {
    const health = await send({ url: `${base}/healthz`, method: 'GET' });
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await send({ url: `${base}/readyz`, method: 'GET' });
    expect(ready.status).toBe(200);
  });

  it('logs one line per request with its fields, never the body or the DSN key', async () => {
    await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2'), 'secret-message-body') });
    const lines = tunnel.logs().filter((entry) => entry.msg === 'request' && entry.status === 200);
    const line = lines.at(-1);
    expect(line).toMatchObject({ method: 'POST', path: '/tunnel', status: 200, outcome: 'forwarded', project: 'web', upstreamStatus: 200 });
    expect(typeof line?.reqId).toBe('string');
    expect(line?.bytesIn).toBeGreaterThan(0);
    expect(typeof line?.durationMs).toBe('number');
    expect(tunnel.rawLogs()).not.toContain('secret-message-body');
    expect(tunnel.rawLogs()).not.toContain('abc123def456');
    expect(tunnel.rawLogs()).not.toContain('fedcba987654');
  });
});

describe('slow clients', () => {
  it('records a client that breaks off mid-body as request_aborted, forwards nothing, and keeps serving', async () => {
    const header = `${JSON.stringify({ dsn: sentry.dsn('2') })}\n`;
    await new Promise<void>((resolve, reject) => {
      const socket = connect(tunnel.address.port, '127.0.0.1', () => {
        socket.write(`POST /tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n${header}`, () => setTimeout(() => socket.destroy(), 100));
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    const [line] = await waitForLog(tunnel, (entry) => entry.msg === 'request' && entry.code === 'request_aborted');
    expect(line).toMatchObject({ outcome: 'rejected', bytesIn: Buffer.byteLength(header) });
    expect(sentry.requests).toHaveLength(0);
    expect((await send({ url: `${base}/tunnel`, body: errorEnvelope(sentry.dsn('2')) })).status).toBe(200);
  });

  it('answers 408 request_timeout when the body does not arrive within server.requestTimeoutMs', async () => {
    const slow = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, server: { requestTimeoutMs: 300 } });
    try {
      const header = `${JSON.stringify({ dsn: sentry.dsn('2') })}\n`;
      const reply = await rawExchange(slow.address.port, `POST /tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${header}`);
      expect(reply).toMatch(/^HTTP\/1\.1 408 /);
      expect(reply).toContain('"code":"request_timeout"');
      expect(sentry.requests).toHaveLength(0);
    } finally {
      await slow.shutdown();
    }
  });

  it("times each body from its own start: a stalled body gets 408 while one begun later, and slow, still arrives", async () => {
    const slow = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, server: { requestTimeoutMs: 400 } });
    try {
      const started = Date.now();
      const stalled = rawExchange(slow.address.port, `POST /tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${JSON.stringify({ dsn: sentry.dsn('2') })}\n`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      // Begun 250 ms after the stalled one and finished 200 ms later: past the stalled body's deadline, within its own.
      const body = errorEnvelope(sentry.dsn('2'));
      const late = new Promise<string>((resolve, reject) => {
        const socket = connect(slow.address.port, '127.0.0.1', () => {
          socket.write(`POST /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
          socket.write(body.subarray(0, 100));
          setTimeout(() => socket.write(body.subarray(100)), 200);
        });
        let data = '';
        socket.on('data', (chunk) => (data += chunk.toString()));
        socket.on('error', reject);
        socket.on('close', () => resolve(data));
      });
      const stalledReply = await stalled;
      const elapsed = Date.now() - started;
      expect(stalledReply).toMatch(/^HTTP\/1\.1 408 /);
      // Cut off after its deadline, and within a tenth of the timeout after it (plus scheduling slack).
      expect(elapsed).toBeGreaterThanOrEqual(400);
      expect(elapsed).toBeLessThan(400 + 40 + 250);
      expect(await late).toMatch(/^HTTP\/1\.1 200 /);
      expect(sentry.requests.map((request) => request.body.equals(body))).toEqual([true]);
    } finally {
      await slow.shutdown();
    }
  });

  it('closes a connection whose headers do not arrive within server.headersTimeoutMs', async () => {
    const slow = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, server: { headersTimeoutMs: 300 } });
    try {
      const reply = await rawExchange(slow.address.port, 'POST /tunnel HTTP/1.1\r\nHost: x\r\n');
      expect(reply).toMatch(/^HTTP\/1\.1 408 /);
      expect(reply).toContain('"code":"request_timeout"');
    } finally {
      await slow.shutdown();
    }
  });

  it('answers malformed HTTP with 400 bad_request and keeps serving', async () => {
    const slow = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } } });
    try {
      const reply = await rawExchange(slow.address.port, 'NOT HTTP AT ALL\r\n\r\n');
      expect(reply).toMatch(/^HTTP\/1\.1 400 /);
      expect(reply).toContain('"code":"bad_request"');
      expect((await send({ url: `http://127.0.0.1:${slow.address.port}/healthz`, method: 'GET' })).status).toBe(200);
    } finally {
      await slow.shutdown();
    }
  });
});

/** Writes `request` on a raw socket and collects everything until the server closes it (bounded). */
function rawExchange(port: number, request: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open; got: ${data}`));
    }, timeoutMs);
    socket.on('data', (chunk) => {
      data += chunk.toString();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
