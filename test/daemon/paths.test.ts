// server.path as a list: envelopes arrive on every configured path (and {path}/<project> under each),
// the log and metrics say which path was used, and everything announcing the tunnel names the first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { runCli, tempDir } from '../helpers/run-cli.js';
import { scrape } from '../helpers/scrape.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let sentry: FakeSentry;
let tunnel: TestTunnel;
const PATHS = ['/api/sentry-tunnel', '/log/sentry'];

beforeAll(async () => {
  sentry = await FakeSentry.start();
  tunnel = await startTestTunnel({ server: { path: PATHS }, projects: { web: { dsn: sentry.dsn() } } });
});

afterAll(async () => {
  await tunnel?.shutdown();
  await sentry?.close();
});

describe('several server.path entries', () => {
  it('forwards on each path and on {path}/<project> under each, byte for byte; other paths get 404', async () => {
    const origin = `http://127.0.0.1:${tunnel.address.port}`;
    expect(tunnel.url).toBe(`${origin}/api/sentry-tunnel`);
    const sent: Buffer[] = [];
    for (const path of ['/api/sentry-tunnel', '/log/sentry', '/api/sentry-tunnel/web', '/log/sentry/web']) {
      const body = errorEnvelope(sentry.dsn(), `via ${path}`);
      sent.push(body);
      const response = await tunnel.post(body, { path });
      expect(response.status, path).toBe(200);
    }
    expect(sentry.requests.map((request) => request.body.toString('base64'))).toEqual(sent.map((body) => body.toString('base64')));
    expect((await tunnel.post(errorEnvelope(sentry.dsn()), { path: '/tunnel' })).status).toBe(404);
    expect((await tunnel.post(errorEnvelope(sentry.dsn()), { path: '/log/sentry/nope' })).status).toBe(404);
    expect(sentry.requests).toHaveLength(4);

    const lines = tunnel.logs().filter((line) => line.msg === 'request');
    expect(lines.map((line) => [line.path, line.route, line.status])).toEqual([
      ['/api/sentry-tunnel', '/api/sentry-tunnel', 200],
      ['/log/sentry', '/log/sentry', 200],
      ['/api/sentry-tunnel/web', '/api/sentry-tunnel', 200],
      ['/log/sentry/web', '/log/sentry', 200],
      ['/tunnel', undefined, 404],
      ['/log/sentry/nope', '/log/sentry', 404],
    ]);
    const metrics = await scrape(`${origin}/metrics`);
    expect(metrics.value('sentry_tunnel_route_requests_total{route="/api/sentry-tunnel"}')).toBe(2);
    expect(metrics.value('sentry_tunnel_route_requests_total{route="/log/sentry"}')).toBe(3);
    expect(metrics.series('sentry_tunnel_route_requests_total')).toHaveLength(2);
  });

  it('announces the first path: the listening line, check-config and send-test', async () => {
    const listening = tunnel.logs().find((line) => String(line.msg).startsWith('sentry-tunnel listening on'));
    expect(listening?.url).toBe(tunnel.url);

    const dir = tempDir();
    const file = dir.write('config.json', { server: { port: tunnel.address.port, path: PATHS }, projects: { web: { dsn: sentry.dsn() } } });
    const checked = await runCli(['check-config', '--config', file]);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain(`listen    http://127.0.0.1:${tunnel.address.port}/api/sentry-tunnel`);
    expect(checked.stdout).toMatch(/POST \/api\/sentry-tunnel\s+envelopes for any configured project\n/);
    expect(checked.stdout).toMatch(/POST \/log\/sentry\s+envelopes for any configured project \(also: server\.path\.1\)/);
    expect(checked.stdout).toMatch(/POST \/log\/sentry\/\{project\}\s+envelopes for that project only \(web\) \(also: server\.path\.1\)/);

    const before = sentry.requests.length;
    const sentTest = await runCli(['send-test', '--config', file]);
    expect(sentTest.code, sentTest.stdout + sentTest.stderr).toBe(0);
    expect(sentry.requests).toHaveLength(before + 1);
    expect(tunnel.logs().filter((line) => line.msg === 'request').at(-1)).toMatchObject({ path: '/api/sentry-tunnel', status: 200 });
    dir.remove();
  });

  it('refuses an empty list, a path listed twice, a built-in endpoint, and metrics.path under any of them', () => {
    const dsn = sentry.dsn();
    const problems = (server: unknown, metrics?: unknown) => {
      try {
        validateConfig({ server, projects: { web: { dsn } }, ...(metrics ? { metrics } : {}) });
        return [];
      } catch (error) {
        return (error as { problems: { path: string; message: string }[] }).problems.map((problem) => `${problem.path}: ${problem.message}`);
      }
    };
    expect(problems({ path: [] })).toEqual(['server.path: list at least one path']);
    expect(problems({ path: ['/a', '/a'] })).toEqual(['server.path: lists a path twice']);
    expect(problems({ path: ['/a', '/healthz'] })).toEqual(['server.path.1: path collides with a built-in endpoint']);
    expect(problems({ path: ['/a', '/b'] }, { path: '/b/metrics' })).toEqual(['metrics.path: collides with server.path or a health endpoint on the same port']);
  });
});
