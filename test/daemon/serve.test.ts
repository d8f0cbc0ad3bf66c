// `sentry-tunnel serve` as a user runs it: the real CLI in a child process.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { send } from '../helpers/http.js';
import { listeningUrl, runCli } from '../helpers/spawn-cli.js';

let sentry: FakeSentry;
let emptyDir: string;

beforeAll(async () => {
  sentry = await FakeSentry.start();
  emptyDir = await mkdtemp(join(tmpdir(), 'sentry-tunnel-serve-'));
});

afterAll(async () => {
  await sentry.close();
});

describe('sentry-tunnel serve', () => {
  it('runs with --dsn and no config file, forwards, and exits 0 on SIGTERM', async () => {
    const cli = runCli(['serve', '--dsn', sentry.dsn('7'), '--port', '0'], { cwd: emptyDir });
    const line = await cli.waitForLine(/listening on/);
    expect(line).toContain('7 → http://127.0.0.1');
    expect(line).not.toContain('abc123def456');
    const url = listeningUrl(line);
    const body = errorEnvelope(sentry.dsn('7'));
    const res = await send({ url, body });
    expect(res.status).toBe(200);
    expect(sentry.requests.at(-1)?.body.equals(body)).toBe(true);
    cli.child.kill('SIGTERM');
    expect(await cli.exited()).toBe(0);
    expect(cli.stdout()).toContain('"msg":"stopped"');
  });

  it('writes a lone request line within the flush interval: log batching never holds a line until exit', async () => {
    const cli = runCli(['serve', '--dsn', sentry.dsn('7'), '--port', '0'], { cwd: emptyDir, env: { SENTRY_TUNNEL_LOG_REQUESTS: 'all' } });
    try {
      const url = listeningUrl(await cli.waitForLine(/listening on/));
      const res = await send({ url, body: errorEnvelope(sentry.dsn('7')) });
      expect(res.status).toBe(200);
      // One short line is far below the 4 KiB batch: only the periodic flush (200 ms) writes it.
      const line = JSON.parse(await cli.waitForLine(/"msg":"request"/, 2_000)) as Record<string, unknown>;
      expect(line).toMatchObject({ status: 200, outcome: 'forwarded', project: '7' });
      expect(cli.child.exitCode).toBeNull();
    } finally {
      cli.child.kill('SIGTERM');
      await cli.exited();
    }
  });

  it('reads the environment: SENTRY_TUNNEL_DSNS and SENTRY_TUNNEL_PORT', async () => {
    const cli = runCli(['serve'], { cwd: emptyDir, env: { SENTRY_TUNNEL_DSNS: sentry.dsn('8'), SENTRY_TUNNEL_PORT: '0' } });
    const url = listeningUrl(await cli.waitForLine(/listening on/));
    expect((await send({ url, body: errorEnvelope(sentry.dsn('8')) })).status).toBe(200);
    cli.child.kill('SIGINT');
    expect(await cli.exited()).toBe(0);
  });

  it('finishes an in-flight request on SIGTERM before exiting, and /readyz turns 503', async () => {
    sentry.reply = { delayMs: 600 };
    const cli = runCli(['serve', '--dsn', sentry.dsn('7'), '--port', '0'], { cwd: emptyDir });
    try {
      const url = listeningUrl(await cli.waitForLine(/listening on/));
      const before = sentry.requests.length;
      const inFlight = send({ url, body: errorEnvelope(sentry.dsn('7')) });
      await sentry.waitForRequests(before + 1);
      cli.child.kill('SIGTERM');
      await cli.waitForLine(/shutting down/);
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(await cli.exited()).toBe(0);
      await expect(send({ url: url.replace('/tunnel', '/healthz'), method: 'GET' })).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      sentry.reply = {};
    }
  });

  it('exits at once on a second signal', async () => {
    sentry.reply = { delayMs: 5_000 };
    const cli = runCli(['serve', '--dsn', sentry.dsn('7'), '--port', '0'], { cwd: emptyDir });
    try {
      const url = listeningUrl(await cli.waitForLine(/listening on/));
      const before = sentry.requests.length;
      const inFlight = send({ url, body: errorEnvelope(sentry.dsn('7')) }).catch((error: Error) => error);
      await sentry.waitForRequests(before + 1);
      const started = Date.now();
      cli.child.kill('SIGTERM');
      await cli.waitForLine(/shutting down/);
      cli.child.kill('SIGTERM');
      expect(await cli.exited()).toBe(143);
      expect(Date.now() - started).toBeLessThan(4_000);
      await inFlight;
    } finally {
      sentry.reply = {};
    }
  });

  it('says so in one sentence and exits 1 when the port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const cli = runCli(['serve', '--dsn', sentry.dsn('7'), '--port', String(port)], { cwd: emptyDir });
      expect(await cli.exited()).toBe(1);
      expect(cli.stderr().trim()).toBe(`Port ${port} on 127.0.0.1 is already in use: stop the other process or choose another --port.`);
    } finally {
      blocker.close();
    }
  });

  it('lists every configuration problem and exits 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sentry-tunnel-bad-'));
    await writeFile(
      join(dir, 'sentry-tunnel.config.json'),
      JSON.stringify({ server: { port: -1 }, projects: { web: { dsn: 'https://o1.ingest.sentry.io/2' } }, limits: { maxEnvelopeByte: 1 } }),
    );
    const cli = runCli(['serve'], { cwd: dir });
    expect(await cli.exited()).toBe(2);
    const stderr = cli.stderr();
    expect(stderr).toContain('server.port: port must be 1–65535');
    expect(stderr).toContain('projects.web.dsn: not a valid DSN: missing public key');
    expect(stderr).toContain('limits.maxEnvelopeByte: unknown key "maxEnvelopeByte"');
  });

  it('exits 2 and says where it looked when there is no configuration', async () => {
    const cli = runCli(['serve'], { cwd: emptyDir });
    expect(await cli.exited()).toBe(2);
    expect(cli.stderr()).toContain('No configuration found');
    expect(cli.stderr()).toContain(emptyDir);
  });

  it('starts on the shipped example configuration', async () => {
    const example = new URL('../../sentry-tunnel.config.example.json', import.meta.url).pathname;
    const cli = runCli(['serve', '--config', example, '--port', '0'], { cwd: emptyDir });
    const line = await cli.waitForLine(/listening on/);
    expect(line).toContain('web → https://o1.ingest.sentry.io');
    const health = await send({ url: listeningUrl(line).replace('/tunnel', '/healthz'), method: 'GET' });
    expect(health.status).toBe(200);
    cli.child.kill('SIGTERM');
    expect(await cli.exited()).toBe(0);
  });
});

describe('sentry-tunnel (no command)', () => {
  it('prints the version', async () => {
    const cli = runCli(['--version']);
    expect(await cli.exited()).toBe(0);
    expect(cli.stdout().trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('lists the commands in --help and exits 2 on an unknown one', async () => {
    const help = runCli(['--help']);
    expect(await help.exited()).toBe(0);
    for (const command of ['serve', 'check-config', 'send-test']) expect(help.stdout()).toContain(command);
    const unknown = runCli(['launch']);
    expect(await unknown.exited()).toBe(2);
    expect(unknown.stderr()).toContain("unknown command 'launch'");
  });

  it('rejects a bad --port with a usage error', async () => {
    const cli = runCli(['serve', '--port', 'eighty']);
    expect(await cli.exited()).toBe(2);
    expect(cli.stderr()).toContain('port must be 1–65535');
  });
});
