// `sentry-tunnel send-test` run as the real CLI against a real tunnel and a fake Sentry on loopback:
// what arrives upstream, and a diagnosis with a fix for every cause of failure, with --direct and --json.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { runCli, tempDir } from '../helpers/run-cli.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

interface Report {
  ok: boolean;
  via: string;
  url: string | null;
  eventId: string | null;
  steps: { name: string; ok: boolean | null; detail: string }[];
  response: { status: number; code: string | null } | null;
  roundTripMs: number | null;
  diagnosis: { cause: string; problem: string; fix: string } | null;
  notes: string[];
}

let sentry: FakeSentry;
let tunnel: TestTunnel;
let tiny: TestTunnel;
let cutOff: TestTunnel;
let spoolingCutOff: TestTunnel;
let deadPort: number;
let impostor: Server;
let impostorReply: { status: number; headers: Record<string, string>; body: string };
let dir: ReturnType<typeof tempDir>;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  dir = tempDir();
  sentry = await FakeSentry.start();
  deadPort = await freePort();
  tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, cors: { origins: ['https://app.example.com'] }, upstream: { timeoutMs: 500 } });
  tiny = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, limits: { maxEnvelopeBytes: 64, maxDecodedBytes: 64, maxHeaderLineBytes: 64 } });
  cutOff = await startTestTunnel({ projects: { web: { dsn: `http://abc123def456@127.0.0.1:${deadPort}/2` } } });
  spoolingCutOff = await startTestTunnel({
    projects: { web: { dsn: `http://abc123def456@127.0.0.1:${deadPort}/2` } },
    spool: { dir: `${dir.path}/spool-cut-off`, retry: { initialMs: 60_000, maxMs: 60_000 } },
  });
  impostor = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(impostorReply.status, impostorReply.headers).end(impostorReply.body));
  });
  await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
});

afterEach(() => {
  sentry.requests.length = 0;
  sentry.reply = {};
});

afterAll(async () => {
  await Promise.all([tunnel.shutdown(), tiny.shutdown(), cutOff.shutdown(), spoolingCutOff.shutdown()]);
  await sentry.close();
  impostor.closeAllConnections();
  await new Promise((resolve) => impostor.close(resolve));
  dir.remove();
});

async function sendTest(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; report: () => Report }> {
  const result = await runCli(['send-test', ...args]);
  return { ...result, report: () => JSON.parse(result.stdout) as Report };
}

function viaTunnel(target = tunnel, ...args: string[]) {
  return sendTest('--url', target.url, '--dsn', sentry.dsn('2'), ...args);
}

describe('send-test through a running tunnel', () => {
  it('sends an SDK-shaped event the way a browser does and shows Sentry accepted it; exit 0', async () => {
    const result = await viaTunnel(tunnel, '--message', 'hello from the test');
    expect(result.code).toBe(0);
    const [arrived] = await sentry.waitForRequests(1);
    expect(arrived?.url).toBe('/api/2/envelope/?sentry_version=7&sentry_key=abc123def456');
    expect(arrived?.headers['content-type']).toBe('text/plain;charset=UTF-8');
    const [headerLine = '', itemHeader = '', payload = ''] = (arrived?.body.toString() ?? '').split('\n');
    const header = JSON.parse(headerLine) as Record<string, any>;
    expect(header.event_id).toMatch(/^[0-9a-f]{32}$/);
    expect(header.dsn).toBe(sentry.dsn('2'));
    expect(header.sdk).toEqual({ name: 'sentry-tunnel.send-test', version: expect.any(String) });
    expect(Date.parse(header.sent_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.parse(itemHeader)).toEqual({ type: 'event' });
    const event = JSON.parse(payload) as Record<string, any>;
    expect(event).toMatchObject({ event_id: header.event_id, message: 'hello from the test', level: 'info', platform: 'javascript', tags: { 'sentry_tunnel.test': 'true' } });
    expect(typeof event.timestamp).toBe('number');

    expect(result.stdout).toMatch(/✔ tunnel reachable +http:\/\/127\.0\.0\.1:\d+ answered/);
    expect(result.stdout).toMatch(/✔ tunnel response +forwarded/);
    expect(result.stdout).toContain(`✔ Sentry's answer    accepted: event id ${header.event_id}`);
    expect(result.stdout).toMatch(/round trip \d+ ms/);
  });

  it('--origin sends a CORS preflight first; --json reports every step', async () => {
    const result = await viaTunnel(tunnel, '--origin', 'https://app.example.com', '--json');
    expect(result.code).toBe(0);
    const report = result.report();
    expect(report.ok).toBe(true);
    expect(report.steps.map((step) => [step.name, step.ok])).toEqual([
      ['config', null],
      ['envelope', true],
      ['reachable', true],
      ['preflight', true],
      ['tunnel', true],
      ['sentry', true],
    ]);
    const [arrived] = await sentry.waitForRequests(1);
    expect(report.eventId).toBe((JSON.parse(arrived?.body.toString().split('\n')[0] ?? '') as { event_id: string }).event_id);
    expect(arrived?.headers.origin).toBe('https://app.example.com');
    expect(report.response?.status).toBe(200);
    expect(report.diagnosis).toBeNull();
    expect(report.notes).toEqual([]);
    expect(typeof report.roundTripMs).toBe('number');
  });

  it('derives the URL from the configuration (0.0.0.0 becomes loopback) and takes the --project DSN', async () => {
    const file = dir.write('send.json', {
      server: { host: '0.0.0.0', port: tunnel.address.port },
      projects: { other: { dsn: sentry.dsn('7') }, web: { dsn: sentry.dsn('2') } },
      spool: { dir: `${dir.path}/spool` },
    });
    const result = await sendTest('--config', file, '--project', 'web', '--json');
    const report = result.report();
    expect(report.url).toBe(`http://127.0.0.1:${tunnel.address.port}/tunnel`);
    expect(report.steps[0]).toEqual({ name: 'config', ok: true, detail: file });
    // The in-process tunnel forwards only "web", so the config's other project would have been refused.
    expect(result.code).toBe(0);
    expect((await sentry.waitForRequests(1))[0]?.url).toMatch(/^\/api\/2\/envelope\//);
    // Forwarded, not spooled: the tunnel marks a spooled 200 itself, so no hedging note is needed.
    expect(report.notes).toEqual([]);
  });
});

describe('send-test diagnoses', () => {
  it('nothing listening: start the tunnel or fix --url', async () => {
    const file = dir.write('dead.json', { server: { port: deadPort }, projects: { web: { dsn: sentry.dsn('2') } } });
    const result = await sendTest('--config', file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('✘ tunnel reachable');
    expect(result.stdout).toContain(`Problem: Nothing is listening at 127.0.0.1:${deadPort} (connection refused)`);
    expect(result.stdout).toContain(`Fix:     Start the tunnel with \`sentry-tunnel serve --config ${file}\`; if it runs elsewhere or on another port, pass that address with --url.`);
  });

  it('404: the tunnel serves a different path, and which one', async () => {
    const file = dir.write('path.json', { server: { port: tunnel.address.port }, projects: { web: { dsn: sentry.dsn('2') } } });
    const wrong = `http://127.0.0.1:${tunnel.address.port}/sentry`;
    const result = await sendTest('--config', file, '--url', wrong, '--json');
    expect(result.code).toBe(1);
    const { diagnosis, response } = result.report();
    expect(response).toMatchObject({ status: 404, code: 'not_found' });
    expect(diagnosis?.cause).toBe('wrong_path');
    expect(diagnosis?.problem).toContain('serves a different path than /sentry');
    expect(diagnosis?.fix).toContain(`--url http://127.0.0.1:${tunnel.address.port}/tunnel`);
  });

  it('403 dsn_not_allowed: add the DSN under projects; nothing reaches Sentry', async () => {
    const result = await sendTest('--url', tunnel.url, '--dsn', sentry.dsn('99'));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✘ tunnel response +403 dsn_not_allowed/);
    expect(result.stdout).toContain('does not forward to this DSN');
    expect(result.stdout).toContain('Fix:     Add the DSN under "projects"');
    expect(sentry.requests).toHaveLength(0);
  });

  it('403 origin_not_allowed at the preflight: add the origin to cors.origins', async () => {
    const result = await viaTunnel(tunnel, '--origin', 'https://evil.example.com', '--json');
    expect(result.code).toBe(1);
    const report = result.report();
    expect(report.steps.at(-1)).toMatchObject({ name: 'preflight', ok: false });
    expect(report.diagnosis?.cause).toBe('origin_not_allowed');
    expect(report.diagnosis?.fix).toContain('Add "https://evil.example.com" to cors.origins');
    expect(sentry.requests).toHaveLength(0);
  });

  it('413: the tunnel limits are set too low', async () => {
    const result = await viaTunnel(tiny, '--json');
    expect(result.code).toBe(1);
    const { diagnosis, response } = result.report();
    expect(response).toMatchObject({ status: 413, code: 'envelope_too_large' });
    expect(diagnosis?.cause).toBe('too_large');
    expect(diagnosis?.fix).toContain('Raise limits.maxEnvelopeBytes');
  });

  it('429 from Sentry: how long, which scope, and that the tunnel only passed it on', async () => {
    sentry.reply = { status: 429, headers: { 'retry-after': '60', 'x-sentry-rate-limits': '60:error;transaction:organization:usage_exceeded' }, body: '' };
    // A tunnel of its own: a tunnel honours the limit afterwards, which would answer the later tests' events.
    const limited = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } } });
    const result = await viaTunnel(limited).finally(() => limited.shutdown());
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✘ Sentry's answer +429/);
    expect(result.stdout).toContain('Problem: Sentry rate-limited this project for 60 s: error, transaction (scope organization, reason usage_exceeded)');
    expect(result.stdout).toContain("the tunnel only passed Sentry's answer on");
  });

  it('429 from the tunnel itself: its own code, and for how long', async () => {
    impostorReply = { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '30' }, body: JSON.stringify({ error: 'Too many requests from this client.', code: 'rate_limited' }) };
    const result = await sendTest('--url', `http://127.0.0.1:${(impostor.address() as AddressInfo).port}/tunnel`, '--dsn', sentry.dsn('2'), '--json');
    expect(result.code).toBe(1);
    const { diagnosis } = result.report();
    expect(diagnosis?.cause).toBe('rate_limited_by_tunnel');
    expect(diagnosis?.problem).toBe('The tunnel itself rate-limited the event (rate_limited) for 30 s.');
  });

  it('502: the tunnel cannot reach Sentry at the DSN host', async () => {
    const result = await sendTest('--url', cutOff.url, '--dsn', `http://abc123def456@127.0.0.1:${deadPort}/2`);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✘ tunnel response +502 upstream_unavailable/);
    expect(result.stdout).toContain(`cannot reach Sentry at 127.0.0.1:${deadPort}`);
    expect(result.stdout).toContain('check DNS for 127.0.0.1, firewall and egress rules, and any outbound proxy');
  });

  it('200 from the spool: the event was kept, not delivered; names the cause and what to check; exit 1', async () => {
    const result = await sendTest('--url', spoolingCutOff.url, '--dsn', `http://abc123def456@127.0.0.1:${deadPort}/2`);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✔ tunnel response +answered 200 after \d+ ms, but kept the event in its spool/);
    expect(result.stdout).toMatch(/✘ Sentry's answer +not reached: upstream_unavailable ECONNREFUSED/);
    expect(result.stdout).toContain(`did not deliver the event to Sentry at 127.0.0.1:${deadPort}: Sentry could not be reached`);
    expect(result.stdout).toContain('check DNS for 127.0.0.1, firewall and egress rules, and any outbound proxy');
    expect(result.stdout).not.toContain('✔ Sentry');
    const json = await sendTest('--url', spoolingCutOff.url, '--dsn', `http://abc123def456@127.0.0.1:${deadPort}/2`, '--json');
    expect(json.code).toBe(1);
    expect(json.report()).toMatchObject({ ok: false, diagnosis: { cause: 'spooled' }, response: { status: 200, code: null } });
  });

  it('504: Sentry does not answer the tunnel in time', async () => {
    sentry.reply = { delayMs: 1_500 };
    const result = await viaTunnel(tunnel, '--json');
    expect(result.code).toBe(1);
    const { diagnosis, response } = result.report();
    expect(response).toMatchObject({ status: 504, code: 'upstream_timeout' });
    expect(diagnosis?.cause).toBe('sentry_timeout');
    expect(diagnosis?.problem).toContain(`Sentry at 127.0.0.1:${sentry.port} did not answer it within upstream.timeoutMs`);
  });

  it('502 without the tunnel’s JSON code: something in front of the tunnel', async () => {
    impostorReply = { status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad Gateway</html>' };
    const result = await sendTest('--url', `http://127.0.0.1:${(impostor.address() as AddressInfo).port}/tunnel`, '--dsn', sentry.dsn('2'), '--json');
    expect(result.code).toBe(1);
    expect(result.report().diagnosis?.cause).toBe('not_the_tunnel');
    expect(result.report().diagnosis?.problem).toContain('a reverse proxy in front of the tunnel that cannot reach it');
  });

  it('200 that is not Sentry\'s answer: something else serves the path', async () => {
    impostorReply = { status: 200, headers: { 'content-type': 'text/html' }, body: '<!doctype html><div id="app"></div>' };
    const result = await sendTest('--url', `http://127.0.0.1:${(impostor.address() as AddressInfo).port}/tunnel`, '--dsn', sentry.dsn('2'));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✘ Sentry's answer +200/);
    expect(result.stdout).toContain('answered 200, but not with Sentry\'s {"id": …}: something else serves /tunnel');
  });

  it('upstream 403 with X-Sentry-Error: the key is revoked or wrong', async () => {
    sentry.reply = { status: 403, headers: { 'x-sentry-error': 'event submission rejected with_reason: DisabledKey' }, body: '{"detail":"event submission rejected with_reason: DisabledKey"}' };
    const result = await viaTunnel();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✔ tunnel response +forwarded/);
    expect(result.stdout).toMatch(/✘ Sentry's answer +403 "event submission rejected with_reason: DisabledKey"/);
    expect(result.stdout).toContain('Problem: Sentry refused the DSN\'s key: "event submission rejected with_reason: DisabledKey". The key is revoked, disabled or wrong');
    expect(result.stdout).toContain('Client Keys (DSN)');
  });
});

describe('send-test --direct', () => {
  it('sends the same envelope straight to Sentry’s ingest URL, as the SDK builds it', async () => {
    const result = await sendTest('--dsn', sentry.dsn('2'), '--direct', '--json');
    expect(result.code).toBe(0);
    const [arrived] = await sentry.waitForRequests(1);
    expect(arrived?.url).toMatch(/^\/api\/2\/envelope\/\?sentry_version=7&sentry_key=abc123def456&sentry_client=sentry-tunnel\.send-test%2F/);
    const report = result.report();
    expect(report.via).toBe('direct');
    expect(report.url).toContain('sentry_key=abc1%E2%80%A6');
    expect(report.steps.map((step) => step.name)).toEqual(['config', 'envelope', 'reachable', 'sentry']);
  });

  it('401 from Sentry: the key is wrong', async () => {
    sentry.reply = { status: 401, headers: { 'x-sentry-error': 'invalid public key' }, body: '' };
    const result = await sendTest('--dsn', sentry.dsn('2'), '--direct');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✔ Sentry reachable/);
    expect(result.stdout).toContain('Problem: Sentry refused the DSN\'s key: "invalid public key".');
  });

  it('Sentry refusing the connection is told apart from a tunnel problem', async () => {
    const result = await sendTest('--dsn', `http://abc123def456@127.0.0.1:${deadPort}/2`, '--direct', '--json');
    expect(result.code).toBe(1);
    const { diagnosis, steps } = result.report();
    expect(steps.at(-1)).toMatchObject({ name: 'reachable', ok: false });
    expect(diagnosis?.cause).toBe('sentry_unreachable');
    expect(diagnosis?.problem).toBe(`Sentry at 127.0.0.1:${deadPort} refused the connection.`);
  });
});

describe('send-test usage errors exit 2', () => {
  it.each([
    ['--url with --direct', ['--url', 'http://127.0.0.1:1/tunnel', '--dsn', 'https://k@o1.ingest.sentry.io/2', '--direct'], '--url and --direct do not go together'],
    ['an invalid --dsn', ['--url', 'http://127.0.0.1:1/tunnel', '--dsn', 'https://o1.ingest.sentry.io/2'], '--dsn is not a valid DSN: missing public key.'],
    ['an invalid --url', ['--url', 'localhost:8080', '--dsn', 'https://k@o1.ingest.sentry.io/2'], '--url must be http:// or https://'],
    ['an invalid --origin', ['--url', 'http://127.0.0.1:1/tunnel', '--dsn', 'https://k@o1.ingest.sentry.io/2', '--origin', 'app.example.com'], '--origin must be a site\'s origin'],
    ['an unknown --project', ['--config', 'sentry-tunnel.config.example.json', '--project', 'mobile'], 'No project named "mobile" in the configuration; there are: web.'],
    ['a --timeout that is not a number', ['--timeout', 'soon'], 'must be a whole number ≥ 1'],
  ])('%s', async (_name, args, message) => {
    const result = await sendTest(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('no configuration and no --url/--dsn: says where it looked', async () => {
    const empty = tempDir();
    try {
      const result = await runCli(['send-test', '--json'], { cwd: empty.path });
      expect(result.code).toBe(2);
      const report = JSON.parse(result.stdout) as Report;
      expect(report.steps).toEqual([{ name: 'config', ok: false, detail: 'no configuration found' }]);
      expect(report.diagnosis?.cause).toBe('usage');
      expect(report.diagnosis?.problem).toContain('No configuration found. Looked for');
    } finally {
      empty.remove();
    }
  });
});
