// tunnel.fetch called directly with Web Requests, the way Hono, Remix, Astro, Bun and Deno call it,
// behind a plain node:http server that only turns requests into Requests.
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTunnel } from '../../src/index.js';
import { contractConfig, describeEmbeddedContract, expectError } from '../helpers/embedded-contract.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';

/** A node:http server handing every request to `handle` as a Request (the framework's part). */
async function serveFetch(handle: (request: Request, req: IncomingMessage) => Promise<Response>): Promise<{ server: Server; origin: string }> {
  const server = createServer(async (req, res) => {
    const origin = `http://${req.headers.host}`;
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(new URL(req.url ?? '/', origin), {
      method: req.method,
      headers: req.headers as Record<string, string>,
      body: hasBody ? (Readable.toWeb(req) as ReadableStream) : null,
      duplex: 'half',
    } as RequestInit);
    const response = await handle(request, req);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describeEmbeddedContract('tunnel.fetch', async (sentry) => {
  const tunnel = createTunnel(contractConfig(sentry.dsn()));
  const { server, origin } = await serveFetch(async (request, req) => {
    if (new URL(request.url).pathname === '/read-first') {
      await request.text();
      return tunnel.fetch(request, { clientAddress: req.socket.remoteAddress });
    }
    return tunnel.fetch(request, { clientAddress: req.socket.remoteAddress });
  });
  return {
    url: `${origin}/anything`,
    clientAddress: '127.0.0.1',
    bodyReadUrl: `${origin}/read-first`,
    close: async () => {
      await tunnel.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});

describe('tunnel.fetch on its own', () => {
  let sentry: FakeSentry;
  beforeAll(async () => {
    sentry = await FakeSentry.start();
  });
  afterAll(() => sentry.close());

  it('is a bound function: `export const POST = tunnel.fetch` works', async () => {
    const { fetch: POST, close } = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { level: 'silent' } });
    const res = await POST(new Request('http://app.test/api/tunnel', { method: 'POST', body: errorEnvelope(sentry.dsn()) }), { clientAddress: '198.51.100.7' });
    expect(res.status).toBe(200);
    const [arrived] = await sentry.waitForRequests(1);
    expect(arrived?.headers['x-forwarded-for']).toBe('198.51.100.7');
    await close();
    sentry.requests.length = 0;
  });

  it('selects a named project with info.project, as POST {server.path}/<name> does', async () => {
    const tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() }, api: { dsn: sentry.dsn('3', 'fedcba987654') } }, log: { level: 'silent' } });
    const mismatch = await tunnel.fetch(new Request('http://app.test/t', { method: 'POST', body: errorEnvelope(sentry.dsn()) }), { project: 'api' });
    expect(mismatch.status).toBe(403);
    expect(await mismatch.json()).toMatchObject({ code: 'dsn_mismatch' });
    const unknown = await tunnel.fetch(new Request('http://app.test/t', { method: 'POST', body: errorEnvelope(sentry.dsn()) }), { project: 'nope' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'unknown_project' });
    const ok = await tunnel.fetch(new Request('http://app.test/t', { method: 'POST', body: errorEnvelope(sentry.dsn('3', 'fedcba987654')) }), { project: 'api' });
    expect(ok.status).toBe(200);
    expect((await sentry.waitForRequests(1))[0]?.url).toBe('/api/3/envelope/?sentry_version=7&sentry_key=fedcba987654');
    await tunnel.close();
    sentry.requests.length = 0;
  });

  it('answers 405 method_not_allowed to a GET handed to it', async () => {
    await using tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { level: 'silent' } });
    const res = await tunnel.fetch(new Request('http://app.test/t'));
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST, OPTIONS');
    expect(await res.json()).toMatchObject({ code: 'method_not_allowed' });
  });

  it('refuses a POST the framework handed over without its body (SvelteKit without Content-Type)', async () => {
    await using tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { level: 'silent' } });
    const bodiless = new Request('http://app.test/t', { method: 'POST', headers: { 'content-length': '120' } });
    const res = await tunnel.fetch(bodiless);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe('body_already_read');
    expect(body.error).toContain('tunnel.middleware');
    expect(sentry.requests).toHaveLength(0);
  });

  it('refuses the same for a chunked POST (Transfer-Encoding, no Content-Length) handed over without its body', async () => {
    await using tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { level: 'silent' } });
    const bodiless = new Request('http://app.test/t', { method: 'POST', headers: { 'transfer-encoding': 'chunked' } });
    const res = await tunnel.fetch(bodiless);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { code: string }).code).toBe('body_already_read');
    expect(sentry.requests).toHaveLength(0);
  });

  it('validates the configuration synchronously and lists every problem', () => {
    expect(() => createTunnel({ projects: { web: { dsn: 'not a dsn' } }, limits: { maxEnvelopeBytes: 0 } })).toThrow(
      /projects\.web\.dsn: not a valid DSN[\s\S]*limits\.maxEnvelopeBytes/,
    );
  });

  it('given a function, reads the configuration on first use (builds without the runtime environment)', async () => {
    let dsn: string | undefined;
    const tunnel = createTunnel(() => ({ projects: { web: { dsn: dsn as string } }, log: { level: 'silent' } }));
    dsn = sentry.dsn();
    const res = await tunnel.fetch(new Request('http://app.test/t', { method: 'POST', body: errorEnvelope(sentry.dsn()) }));
    expect(res.status).toBe(200);
    await tunnel.close();
    sentry.requests.length = 0;
  });

  it('answers 503 shutting_down once closed, and close() is idempotent', async () => {
    const tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { level: 'silent' } });
    await tunnel.ready();
    await Promise.all([tunnel.close(), tunnel.close()]);
    const res = await tunnel.fetch(new Request('http://app.test/t', { method: 'POST', body: errorEnvelope(sentry.dsn()) }));
    expectError({ status: res.status, headers: {}, body: await res.text(), json() { return JSON.parse(this.body) as Record<string, unknown>; } }, 'shutting_down');
  });

  it("serves the tunnel's metrics to an app that already exposes Prometheus, when enabled", async () => {
    await using tunnel = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, metrics: { enabled: true }, log: { level: 'silent' } });
    await tunnel.fetch(new Request('http://app.test/t', { method: 'POST', body: 'not an envelope' }));
    const text = await tunnel.metrics();
    expect(text).toContain('sentry_tunnel_rejections_total{code="invalid_envelope_header"} 1');
    expect(text).not.toContain('process_cpu_user_seconds_total');
    await using quiet = createTunnel({ projects: { web: { dsn: sentry.dsn() } }, log: { level: 'silent' } });
    expect(await quiet.metrics()).toBe('');
  });

  it('takes a second tunnel in one process (a hot reload) but not a second lock on one spool directory', async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/tunnel-spool-`);
    const config = { projects: { web: { dsn: sentry.dsn() } }, spool: { dir }, log: { level: 'silent' as const } };
    const first = createTunnel(config);
    await first.ready();
    const second = createTunnel(config);
    await expect(second.ready()).rejects.toThrow(/already used by another tunnel in this process/);
    const res = await second.fetch(new Request('http://app.test/t', { method: 'POST', body: errorEnvelope(sentry.dsn()) }));
    expect(res.status).toBe(500);
    await first.close();
    const third = createTunnel(config);
    await third.ready();
    await third.close();
    await second.close();
  });
});
