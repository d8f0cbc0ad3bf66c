// Several replicas sharing limits through a real redis-server: budgets hold exactly across tunnels,
// Sentry's limits reach every replica, and a Redis outage never stops events.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { envelope, errorEnvelope, eventId } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { waitForLog } from '../helpers/log-lines.js';
import { RedisServer, findRedisServer } from '../helpers/redis.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

const redisBinary = findRedisServer();
const HOUR = 3_600_000;

let sentry: FakeSentry;
const tunnels: TestTunnel[] = [];
let prefixCounter = 0;

async function startReplica(redisUrl: string, keyPrefix: string, extra: Partial<ConfigInput> = {}): Promise<TestTunnel> {
  const tunnel = await startTestTunnel({
    projects: { web: { dsn: sentry.dsn() } },
    server: { trustProxy: true },
    rateLimit: { perClient: { max: 100, windowMs: HOUR }, redis: { url: redisUrl, keyPrefix } },
    ...extra,
  });
  tunnels.push(tunnel);
  return tunnel;
}

/** 150 concurrent error envelopes from one client, alternating between the replicas; the statuses. */
async function burst(replicas: readonly TestTunnel[], client: string, count = 150): Promise<number[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const replica = replicas[i % replicas.length] as TestTunnel;
      const response = await replica.post(errorEnvelope(sentry.dsn()), { headers: { 'x-forwarded-for': client } });
      await response.arrayBuffer();
      return response.status;
    }),
  );
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

/** Windows are clock-aligned: make sure a burst does not straddle the end of one (waits at most 30 s, rarely). */
async function awayFromWindowEdge(): Promise<void> {
  const left = HOUR - (Date.now() % HOUR);
  if (left < 30_000) await new Promise((resolve) => setTimeout(resolve, left + 10));
}

const isOutageLine = (line: Record<string, unknown>) => String(line.msg).startsWith('Redis unavailable');
const isBackLine = (line: Record<string, unknown>) => String(line.msg).startsWith('Redis is back');

afterEach(async () => {
  await Promise.all(tunnels.splice(0).map((tunnel) => tunnel.shutdown()));
  await sentry?.close();
});

describe('Redis unreachable from the start', () => {
  it('the tunnel starts anyway, says so once, and forwards with limits of its own', async () => {
    sentry = await FakeSentry.start();
    // Port 9 (discard) on loopback: nothing listens there, connections are refused.
    const t = await startReplica('redis://127.0.0.1:9', 'unreachable', {
      rateLimit: { perClient: { max: 3, windowMs: HOUR }, redis: { url: 'redis://:secret@127.0.0.1:9', keyPrefix: 'unreachable', timeoutMs: 200 } },
    });
    const statuses = await burst([t], '10.9.0.1', 5);
    expect(statuses.sort()).toEqual([200, 200, 200, 429, 429]);
    expect(t.logs().filter(isOutageLine)).toHaveLength(1);
    expect(t.rawLogs()).not.toContain('secret');
  });
});

if (!redisBinary) {
  if (process.env.CI) {
    it('redis-server is installed (required when CI is set)', () => {
      throw new Error('redis-server is missing: .ci/run installs the Debian package redis-server');
    });
  } else {
    console.warn('Skipping the tests with a real Redis: redis-server is not installed (apt-get install redis-server).');
  }
}

describe.skipIf(!redisBinary)('replicas sharing one Redis', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await RedisServer.start(redisBinary as string);
  });

  afterAll(async () => {
    await redis?.kill();
  });

  it('two tunnels, a per-client budget of 100, 150 requests across both: exactly 100 forwarded and 50 × 429', async () => {
    sentry = await FakeSentry.start();
    const prefix = `t${++prefixCounter}`;
    const replicas = [await startReplica(redis.url, prefix), await startReplica(redis.url, prefix)];
    await awayFromWindowEdge();
    const statuses = await burst(replicas, '10.1.0.1');
    expect(count(statuses, 200)).toBe(100);
    expect(count(statuses, 429)).toBe(50);
    expect(sentry.requests).toHaveLength(100);
  });

  it('Redis killed: both keep forwarding on local limits, logging once; Redis back: shared limits resume', async () => {
    sentry = await FakeSentry.start();
    const prefix = `t${++prefixCounter}`;
    const replicas = [await startReplica(redis.url, prefix), await startReplica(redis.url, prefix)];
    await awayFromWindowEdge();
    expect(count(await burst(replicas, '10.2.0.1', 10), 200)).toBe(10);

    await redis.kill();
    for (const replica of replicas) expect(await waitForLog(replica, isOutageLine)).toHaveLength(1);
    const during = await burst(replicas, '10.2.0.2', 40);
    expect(count(during, 200)).toBe(40);
    expect(sentry.requests).toHaveLength(50);
    // Local limits still hold while Redis is away: 100 per replica here.
    const alone = await burst([replicas[0] as TestTunnel], '10.2.0.3', 105);
    expect(count(alone, 429)).toBe(5);
    for (const replica of replicas) expect(replica.logs().filter(isOutageLine)).toHaveLength(1);

    await redis.restart();
    for (const replica of replicas) expect(await waitForLog(replica, isBackLine, 8_000)).toHaveLength(1);
    await awayFromWindowEdge();
    const after = await burst(replicas, '10.2.0.4');
    expect(count(after, 200)).toBe(100);
    expect(count(after, 429)).toBe(50);
  });

  it("Sentry's limits reach every replica: those running and one that starts later", async () => {
    sentry = await FakeSentry.start();
    let errorsSeen = 0;
    // Sentry limits errors once; should a replica ask again it would get a 200 and the test would see it.
    sentry.reply = (request) => {
      if (!request.body.includes('"type":"event"') || ++errorsSeen > 1) return {};
      return { status: 429, headers: { 'x-sentry-rate-limits': '60:error:organization' } };
    };
    const prefix = `t${++prefixCounter}`;
    const a = await startReplica(redis.url, prefix);
    const b = await startReplica(redis.url, prefix, { log: { level: 'debug' } });

    expect((await a.post(errorEnvelope(sentry.dsn()))).status).toBe(429);
    expect(await waitForLog(b, (line) => String(line.msg).startsWith('Sentry rate limits learned from another replica'))).not.toHaveLength(0);
    const refused = await b.post(errorEnvelope(sentry.dsn()));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-sentry-rate-limits')).toMatch(/^(5\d|60):error:key$/);
    expect(sentry.requests).toHaveLength(1);

    const c = await startReplica(redis.url, prefix);
    expect((await c.post(errorEnvelope(sentry.dsn()))).status).toBe(429);
    expect(sentry.requests).toHaveLength(1);

    const id = eventId();
    const transaction = envelope({ event_id: id, dsn: sentry.dsn() }, [{ type: 'transaction', payload: { event_id: id } }]);
    expect((await b.post(transaction)).status).toBe(200);
    expect(sentry.requests).toHaveLength(2);
  });
});
