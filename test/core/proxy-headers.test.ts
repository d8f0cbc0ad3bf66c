// A reverse proxy the tunnel was not told about: one warning per tunnel naming the peer and
// server.trustProxy when X-Forwarded-For or Forwarded arrive untrusted; check-config and send-test say it too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { send } from '../helpers/http.js';
import { runCli, tempDir } from '../helpers/run-cli.js';
import { startTestTunnel } from '../helpers/tunnel.js';

let sentry: FakeSentry;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  sentry = await FakeSentry.start();
  dir = tempDir();
});

afterAll(async () => {
  await sentry.close();
  dir.remove();
});

const warnings = (lines: Record<string, unknown>[]) => lines.filter((line) => line.code === 'unexpected_forwarded_header');

describe('proxy headers while server.trustProxy is false', () => {
  it('logs one warning naming the peer address and server.trustProxy, however many requests carry them', async () => {
    const tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } } });
    try {
      const plain = await send({ url: tunnel.url, body: errorEnvelope(sentry.dsn('2')) });
      expect(plain.status).toBe(200);
      expect(warnings(tunnel.logs())).toEqual([]);
      for (const headers of [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.10' }, { 'x-forwarded-for': '203.0.113.11' }] as Record<string, string>[]) {
        expect((await send({ url: tunnel.url, body: errorEnvelope(sentry.dsn('2')), headers })).status).toBe(200);
      }
      const [warning, ...more] = warnings(tunnel.logs());
      expect(more).toEqual([]);
      expect(warning).toMatchObject({ level: 40, peer: '127.0.0.1', header: 'X-Forwarded-For' });
      expect(warning?.msg).toContain('server.trustProxy is false');
      expect(warning?.msg).toContain('"trustProxy": ["127.0.0.1"]');
      expect(tunnel.rawLogs()).not.toContain('203.0.113.');
      // The client address stays the peer: the warning changes nothing about what is trusted.
      expect(sentry.requests.at(-1)?.headers['x-forwarded-for']).toBe('127.0.0.1');
    } finally {
      await tunnel.shutdown();
    }
  });

  it('warns about Forwarded as well', async () => {
    const tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } } });
    try {
      await send({ url: tunnel.url, body: errorEnvelope(sentry.dsn('2')), headers: { forwarded: 'for=203.0.113.10;proto=https' } });
      expect(warnings(tunnel.logs())).toMatchObject([{ peer: '127.0.0.1', header: 'Forwarded' }]);
    } finally {
      await tunnel.shutdown();
    }
  });

  it('says nothing when server.trustProxy lists the proxy', async () => {
    const tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, server: { trustProxy: ['127.0.0.1/32'] } });
    try {
      await send({ url: tunnel.url, body: errorEnvelope(sentry.dsn('2')), headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(warnings(tunnel.logs())).toEqual([]);
      expect(sentry.requests.at(-1)?.headers['x-forwarded-for']).toBe('203.0.113.9');
    } finally {
      await tunnel.shutdown();
    }
  });
});

describe('check-config and send-test mention it', () => {
  it('check-config shows server.trustProxy false with what it means behind a reverse proxy', async () => {
    const file = dir.write('plain.json', { projects: { web: { dsn: sentry.dsn('2') } } });
    const result = await runCli(['check-config', '--config', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/server\.trustProxy +false \(behind a reverse proxy, set it to the proxy's address, or every visitor shares one per-client budget\)/);
  });

  it('send-test notes it when --url is not the tunnel’s own port and trustProxy is false', async () => {
    const tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } } });
    try {
      const file = dir.write('proxied.json', { server: { port: 8443 }, projects: { web: { dsn: sentry.dsn('2') } } });
      const result = await runCli(['send-test', '--config', file, '--url', tunnel.url, '--json']);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as { notes: string[] };
      expect(report.notes).toEqual([expect.stringContaining("is not the tunnel's own listener (port 8443): if a reverse proxy forwards to it, set server.trustProxy")]);
      const same = dir.write('direct.json', { server: { port: tunnel.address.port }, projects: { web: { dsn: sentry.dsn('2') } } });
      const direct = await runCli(['send-test', '--config', same, '--url', tunnel.url, '--json']);
      expect((JSON.parse(direct.stdout) as { notes: string[] }).notes).toEqual([]);
    } finally {
      await tunnel.shutdown();
    }
  });
});
