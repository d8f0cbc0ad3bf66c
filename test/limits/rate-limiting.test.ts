// Rate limiting end to end in one tunnel process: per-client and per-project budgets, Sentry's
// announced limits honoured per data category, and the upstream queue bound (503 overloaded).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { envelope, errorEnvelope, eventId } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { type LogLine, waitForLog } from '../helpers/log-lines.js';
import { runCli } from '../helpers/spawn-cli.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let sentry: FakeSentry;
let tunnel: TestTunnel | undefined;

beforeEach(async () => {
  sentry = await FakeSentry.start();
});

afterEach(async () => {
  await tunnel?.shutdown();
  tunnel = undefined;
  await sentry.close();
});

async function start(rateLimit: ConfigInput['rateLimit'] = {}, projects?: ConfigInput['projects']): Promise<TestTunnel> {
  tunnel = await startTestTunnel({
    projects: projects ?? { web: { dsn: sentry.dsn() } },
    server: { trustProxy: true },
    rateLimit,
  });
  return tunnel;
}

function transactionEnvelope(dsn: string): Buffer {
  const id = eventId();
  return envelope({ event_id: id, dsn }, [{ type: 'transaction', payload: { event_id: id, type: 'transaction', transaction: '/home' } }]);
}

/** The request log lines with `status` (they are written just after the response). */
function requestLog(t: TestTunnel, status: number): Promise<LogLine[]> {
  return waitForLog(t, (line) => line.msg === 'request' && line.status === status);
}

const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });

describe('per-client budget', () => {
  it('answers 429 rate_limited with Retry-After once a client used its budget, before reading the body', async () => {
    const t = await start({ perClient: { max: 3, windowMs: 3_600_000 } });
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 5; i++) {
      const response = await t.post(errorEnvelope(sentry.dsn()), { headers: { ...from('203.0.113.7').headers, origin: 'https://app.example.com' } });
      statuses.push(response.status);
      if (response.status === 429) refused = response;
      else await response.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(sentry.requests).toHaveLength(3);
    expect(await refused?.json()).toMatchObject({ code: 'rate_limited' });
    const retryAfter = Number(refused?.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3_600);
    // The SDK in a browser can only read Retry-After if CORS exposes it.
    expect(refused?.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    // bytesIn 0: the refused request's body was never read.
    expect((await requestLog(t, 429))[0]).toMatchObject({ outcome: 'rate_limited', code: 'rate_limited', rateLimit: { reason: 'client' }, bytesIn: 0 });

    const other = await t.post(errorEnvelope(sentry.dsn()), from('198.51.100.1'));
    expect(other.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${t.address.port}/metrics`)).text();
    expect(metrics).toMatch(/^sentry_tunnel_rate_limited_total\{reason="client",category=""\} 2$/m);
  });

  it('counts an IPv6 client by its /64 network, and an IPv4-mapped address as the IPv4 one', async () => {
    const t = await start({ perClient: { max: 2, windowMs: 3_600_000 } });
    const status = async (ip: string) => {
      const response = await t.post(errorEnvelope(sentry.dsn()), from(ip));
      await response.arrayBuffer();
      return response.status;
    };
    // Three addresses of one /64: one budget of 2.
    expect([await status('2001:db8:1:2::1'), await status('2001:db8:1:2::2'), await status('2001:db8:1:2:ffff::3')]).toEqual([200, 200, 429]);
    // The next /64 has its own.
    expect(await status('2001:db8:1:3::1')).toBe(200);
    expect([await status('10.0.0.1'), await status('::ffff:10.0.0.1'), await status('::ffff:a00:1')]).toEqual([200, 200, 429]);
    expect(sentry.requests).toHaveLength(5);
  });

  it('perClient: false turns the budget off', async () => {
    const t = await start({ perClient: false });
    const statuses = await Promise.all(Array.from({ length: 5 }, () => t.post(errorEnvelope(sentry.dsn()), from('203.0.113.7')).then((r) => r.status)));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
  });
});

describe('per-project budget', () => {
  it('refuses the project over its budget with 429, leaving other projects alone', async () => {
    const mobile = sentry.dsn('3', 'fedcba987654');
    const t = await start({}, { web: { dsn: sentry.dsn(), rateLimit: { max: 2, windowMs: 3_600_000 } }, mobile: { dsn: mobile } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await t.post(errorEnvelope(sentry.dsn()), from(`203.0.113.${i}`))).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect((await t.post(errorEnvelope(mobile))).status).toBe(200);
    expect(sentry.requests).toHaveLength(3);
    expect((await requestLog(t, 429))[0]).toMatchObject({ project: 'web', outcome: 'rate_limited', rateLimit: { reason: 'project' } });
  });
});

describe("Sentry's rate limits", () => {
  it('after "60:error:organization" errors get a local 429 and never reach Sentry; transactions still flow', async () => {
    const t = await start();
    sentry.reply = { status: 429, headers: { 'x-sentry-rate-limits': '60:error:organization', 'retry-after': '60' } };
    expect((await t.post(errorEnvelope(sentry.dsn()))).status).toBe(429);
    expect(sentry.requests).toHaveLength(1);
    sentry.reply = {};

    const refused = await t.post(errorEnvelope(sentry.dsn()), { headers: { origin: 'https://app.example.com' } });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ code: 'rate_limited' });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(55);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('x-sentry-rate-limits')).toMatch(/^(5\d|60):error:key$/);
    expect(refused.headers.get('access-control-expose-headers')).toMatch(/X-Sentry-Rate-Limits/i);
    expect(sentry.requests).toHaveLength(1);
    expect((await requestLog(t, 429)).at(-1)).toMatchObject({ outcome: 'rate_limited', rateLimit: { reason: 'sentry', category: 'error' } });
    const metrics = await (await fetch(`http://127.0.0.1:${t.address.port}/metrics`)).text();
    expect(metrics).toMatch(/^sentry_tunnel_rate_limited_total\{reason="sentry",category="error"\} 1$/m);

    const transaction = await t.post(transactionEnvelope(sentry.dsn()));
    expect(transaction.status).toBe(200);
    expect(sentry.requests).toHaveLength(2);
    expect(t.logs().some((line) => String(line.msg).startsWith('Sentry announced rate limits'))).toBe(true);
  });

  it('lets errors flow again once a short limit ends', async () => {
    const t = await start();
    sentry.reply = { status: 429, headers: { 'x-sentry-rate-limits': '1:error:organization' } };
    await (await t.post(errorEnvelope(sentry.dsn()))).arrayBuffer();
    sentry.reply = {};
    expect((await t.post(errorEnvelope(sentry.dsn()))).status).toBe(429);
    expect(sentry.requests).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await t.post(errorEnvelope(sentry.dsn()))).status).toBe(200);
    expect(sentry.requests).toHaveLength(2);
  });

  it('a bare 429 limits every category for 60 s; the refusal says so to the SDK', async () => {
    const t = await start();
    sentry.reply = { status: 429 };
    await (await t.post(errorEnvelope(sentry.dsn()))).arrayBuffer();
    sentry.reply = {};
    const refused = await t.post(transactionEnvelope(sentry.dsn()));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-sentry-rate-limits')).toMatch(/^(5\d|60)::key$/);
    expect(sentry.requests).toHaveLength(1);
  });

  it('reads the items of a compressed envelope; forwards envelopes with any item not limited', async () => {
    const t = await start();
    sentry.reply = { status: 200, headers: { 'x-sentry-rate-limits': '60:error:organization' } };
    await (await t.post(errorEnvelope(sentry.dsn()))).arrayBuffer();
    sentry.reply = {};

    const gzipped = await t.post(gzipSync(errorEnvelope(sentry.dsn())), { headers: { 'content-encoding': 'gzip' } });
    expect(gzipped.status).toBe(429);
    expect(sentry.requests).toHaveLength(1);

    const id = eventId();
    const mixed = envelope({ event_id: id, dsn: sentry.dsn() }, [
      { type: 'event', payload: { event_id: id } },
      { type: 'client_report', payload: { discarded_events: [] } },
    ]);
    expect((await t.post(mixed)).status).toBe(200);
    expect(sentry.requests).toHaveLength(2);
    expect(sentry.requests[1]?.body.equals(mixed)).toBe(true);
  });

  it('streamed (large) bodies are judged by an "all" limit only', async () => {
    const t = await start();
    sentry.reply = { status: 200, headers: { 'x-sentry-rate-limits': '60:attachment:organization' } };
    await (await t.post(errorEnvelope(sentry.dsn()))).arrayBuffer();
    sentry.reply = {};
    const big = envelope({ event_id: eventId(), dsn: sentry.dsn() }, [{ type: 'attachment', payload: Buffer.alloc(300 * 1024, 0x61), withLength: true }]);
    expect((await t.post(big)).status).toBe(200);
    expect(sentry.requests).toHaveLength(2);

    sentry.reply = { status: 429, headers: { 'retry-after': '30' } };
    await (await t.post(big)).arrayBuffer();
    sentry.reply = {};
    const refused = await t.post(big);
    expect(refused.status).toBe(429);
    expect(sentry.requests).toHaveLength(3);
  });
});

describe('upstream concurrency', () => {
  it('queue full → 503 overloaded with Retry-After, at once, while Sentry is still busy', async () => {
    const t = await start({ maxConcurrent: 1, maxQueued: 1 });
    sentry.reply = { delayMs: 1_000 };
    const statuses: number[] = [];
    const answers = Array.from({ length: 4 }, (_, i) =>
      t.post(errorEnvelope(sentry.dsn()), from(`203.0.113.${i}`)).then(async (response) => {
        statuses.push(response.status);
        return { response, body: (await response.json()) as { code?: string }, upstreamSoFar: sentry.requests.length };
      }),
    );
    const results = await Promise.all(answers);
    const overloaded = results.filter((r) => r.response.status === 503);
    expect(overloaded).toHaveLength(2);
    for (const r of overloaded) {
      expect(r.body.code).toBe('overloaded');
      expect(Number(r.response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Refused while the one request in flight had not been answered: nothing waited unbounded.
      expect(r.upstreamSoFar).toBeLessThanOrEqual(1);
    }
    expect(statuses.slice(0, 2)).toEqual([503, 503]);
    expect(results.filter((r) => r.response.status === 200)).toHaveLength(2);
    expect(sentry.requests).toHaveLength(2);
    expect((await requestLog(t, 503))[0]).toMatchObject({ outcome: 'rate_limited', code: 'overloaded', rateLimit: { reason: 'overloaded' } });
  });
});

describe('upstream concurrency after failures', () => {
  it('gives the slot back when the call to Sentry fails: the next envelope is forwarded, not refused', async () => {
    const t = await start({ maxConcurrent: 1, maxQueued: 0 });
    sentry.reply = { reset: true };
    for (let i = 0; i < 3; i++) {
      const failed = await t.post(errorEnvelope(sentry.dsn()), from('203.0.113.20'));
      expect(failed.status).toBe(502);
      expect(((await failed.json()) as { code?: string }).code).toBe('upstream_unavailable');
    }
    sentry.reply = {};
    const forwarded = await t.post(errorEnvelope(sentry.dsn()), from('203.0.113.20'));
    expect(forwarded.status).toBe(200);
    await forwarded.arrayBuffer();
    // Each reached Sentry: a slot kept by a failed call would have had the next refused 503 overloaded.
    expect(sentry.requests).toHaveLength(4);
  });
});

describe('configuration', () => {
  it('lists every rate-limit problem with its path', () => {
    const problems = (() => {
      try {
        validateConfig({
          projects: { web: { dsn: sentry.dsn(), rateLimit: { max: 0 } } },
          rateLimit: { perClient: { max: 10, windowMs: 10 }, maxConcurrent: 0, redis: { url: 'http://127.0.0.1:6379' } },
        });
      } catch (error) {
        if (error instanceof ConfigError) return error.problems.map((p) => p.path);
        throw error;
      }
      return [];
    })();
    expect(problems).toEqual(
      expect.arrayContaining(['projects.web.rateLimit.max', 'rateLimit.maxConcurrent', 'rateLimit.redis.url']),
    );
    expect(problems.some((path) => path.startsWith('rateLimit.perClient'))).toBe(true);
    expect(() => validateConfig({ projects: { web: { dsn: sentry.dsn() } }, rateLimit: { perClient: true } })).toThrow(/rateLimit\.perClient: true is not allowed/);
  });

  it('check-config shows the budgets and the Redis URL, never its password', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sentry-tunnel-rl-'));
    try {
      const file = join(dir, 'sentry-tunnel.config.json');
      await writeFile(
        file,
        JSON.stringify({
          projects: { web: { dsn: 'https://abc@o1.ingest.sentry.io/2', rateLimit: { max: 50, windowMs: 10_000 } } },
          rateLimit: { perClient: false, maxConcurrent: 8, maxQueued: 16, redis: { url: 'redis://:hunter2@10.0.0.5:6380/1' } },
        }),
      );
      const run = runCli(['check-config', '--config', file]);
      expect(await run.exited()).toBe(0);
      expect(run.stdout()).toMatch(/web → \S+ {2}\(at most 50 envelopes per 10 s\)/);
      expect(run.stdout()).toMatch(/rateLimit\.perClient +false/);
      expect(run.stdout()).toMatch(/rateLimit\.redis\.url +"redis:\/\/:REDACTED@10\.0\.0\.5:6380\/1"/);
      expect(run.stdout() + run.stderr()).not.toContain('hunter2');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('refusals keep the connection', () => {
  it('answers a small body over the per-client budget with 429 on the same keep-alive connection', async () => {
    const sentry = await FakeSentry.start();
    const t = await startTestTunnel({ projects: { web: { dsn: sentry.dsn() } }, rateLimit: { perClient: { max: 1, windowMs: 3_600_000 } } });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports: number[] = [];
    const post = () =>
      new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const body = errorEnvelope(sentry.dsn());
        const req = request(t.url, { method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        });
        req.on('socket', (socket) => socket.once('connect', () => ports.push(socket.localPort ?? 0)));
        req.on('error', reject);
        req.end(body);
      });
    try {
      expect(await post()).toMatchObject({ status: 200 });
      for (let i = 0; i < 3; i++) expect(await post()).toEqual({ status: 429, connection: 'keep-alive' });
      // One connection for all four: the refused bodies were read and discarded, not closed on.
      expect(ports).toHaveLength(1);
      expect(sentry.requests).toHaveLength(1);
    } finally {
      agent.destroy();
      await t.shutdown();
      await sentry.close();
    }
  });
});
