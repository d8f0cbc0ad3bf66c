import { randomBytes } from 'node:crypto';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { StartupError } from '../../src/daemon/server.js';
import { errorEnvelope, envelope, eventId } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { entryBody, entryFiles, removeTempDirs, tempDir, waitFor } from '../helpers/spool.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await removeTempDirs();
});

async function setup(spool: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<{ fake: FakeSentry; tunnel: TestTunnel; dir: string }> {
  const fake = await FakeSentry.start();
  cleanups.push(() => fake.close());
  const dir = (spool.dir as string | undefined) ?? (await tempDir());
  const tunnel = await startTestTunnel({
    projects: { web: { dsn: fake.dsn() } },
    spool: { retry: { initialMs: 20, maxMs: 60 }, ...spool, dir },
    ...extra,
  });
  cleanups.push(() => tunnel.shutdown());
  return { fake, tunnel, dir };
}

function requestLines(tunnel: TestTunnel): Record<string, unknown>[] {
  return tunnel.logs().filter((line) => line.msg === 'request');
}

async function readyz(tunnel: TestTunnel): Promise<{ status: string; spool?: { envelopes: number; bytes: number } }> {
  const response = await fetch(`http://127.0.0.1:${tunnel.address.port}/readyz`);
  expect(response.status).toBe(200);
  return (await response.json()) as { status: string; spool?: { envelopes: number; bytes: number } };
}

describe('spooling when Sentry cannot take an envelope', () => {
  it('answers 200 with the event id, keeps the exact bytes, reports depth in /readyz and delivers them byte-identical later', async () => {
    const { fake, tunnel, dir } = await setup({ retry: { initialMs: 50, maxMs: 100 } });
    let up = false;
    fake.reply = () => (up ? {} : { status: 503 });
    const id = eventId();
    const body = gzipSync(envelope({ event_id: id, dsn: fake.dsn() }, [{ type: 'event', payload: { event_id: id, message: 'spooled' } }]));

    const response = await tunnel.post(body, { headers: { 'content-type': 'application/x-sentry-envelope', 'content-encoding': 'gzip', 'user-agent': 'spool-test/1' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id });
    // Marked for send-test and people with curl; SDKs read only the status and Sentry's rate-limit headers.
    expect(response.headers.get('x-sentry-tunnel-outcome')).toBe('spooled');
    expect(response.headers.get('x-sentry-tunnel-spool-cause')).toBe('upstream_status 503');
    const line = requestLines(tunnel).at(-1);
    expect(line).toMatchObject({ status: 200, outcome: 'spooled', upstreamStatus: 503, cause: 'upstream answered 503', project: 'web' });

    const files = await entryFiles(dir);
    expect(files).toHaveLength(1);
    expect((await entryBody(dir, files[0] as string)).equals(body)).toBe(true);
    const depth = await readyz(tunnel);
    expect(depth.spool?.envelopes).toBe(1);
    expect(depth.spool?.bytes).toBeGreaterThan(body.length);
    expect(tunnel.spool?.stats().envelopes).toBe(1);

    up = true;
    await waitFor('the spooled envelope to be delivered', async () => (await entryFiles(dir)).length === 0);
    const delivered = fake.requests.filter((request) => request.body.equals(body));
    const last = delivered.at(-1);
    expect(last?.headers['content-encoding']).toBe('gzip');
    expect(last?.headers['content-type']).toBe('application/x-sentry-envelope');
    expect(last?.headers['user-agent']).toBe('spool-test/1');
    expect(last?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(last?.headers['content-length']).toBe(String(body.length));
    expect(last?.url).toBe('/api/2/envelope/?sentry_version=7&sentry_key=abc123def456');
    expect(await readyz(tunnel)).toEqual({ status: 'ready', spool: { envelopes: 0, bytes: 0 } });
    expect(tunnel.spool?.counters).toMatchObject({ spooled: 1, delivered: 1 });
  });

  it('spools when Sentry refuses the connection, and when it does not answer in time', async () => {
    const { fake, tunnel, dir } = await setup({}, { upstream: { timeoutMs: 200 } });
    fake.reply = { delayMs: 1_000 };
    const slow = await tunnel.post(errorEnvelope(fake.dsn()));
    expect(slow.status).toBe(200);
    expect(requestLines(tunnel).at(-1)).toMatchObject({ outcome: 'spooled', cause: expect.stringContaining('upstream_timeout') });

    const dsn = fake.dsn();
    await fake.close();
    const refused = await tunnel.post(errorEnvelope(dsn));
    expect(refused.status).toBe(200);
    expect(slow.headers.get('x-sentry-tunnel-spool-cause')).toMatch(/^upstream_timeout\b/);
    expect(refused.headers.get('x-sentry-tunnel-spool-cause')).toBe('upstream_unavailable ECONNREFUSED');
    expect(requestLines(tunnel).at(-1)).toMatchObject({ outcome: 'spooled', cause: expect.stringContaining('upstream_unavailable') });
    expect(await entryFiles(dir)).toHaveLength(2);
  });

  it('never spools Sentry 4xx answers: a 400 and a 429 are relayed as they are', async () => {
    const { fake, tunnel, dir } = await setup();
    fake.reply = { status: 400, body: '{"detail":"bad envelope"}' };
    const rejected = await tunnel.post(errorEnvelope(fake.dsn()));
    expect(rejected.status).toBe(400);
    expect(await rejected.text()).toBe('{"detail":"bad envelope"}');

    fake.reply = { status: 429, headers: { 'retry-after': '30', 'x-sentry-rate-limits': '30::organization' } };
    const limited = await tunnel.post(errorEnvelope(fake.dsn()));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-sentry-rate-limits')).toBe('30::organization');
    expect(limited.headers.get('x-sentry-tunnel-outcome')).toBeNull();
    expect(requestLines(tunnel).map((line) => line.outcome)).toEqual(['forwarded', 'forwarded']);
    expect(await entryFiles(dir)).toEqual([]);
  });

  it('answers 503 spool_full once spool.maxBytes is reached, keeping what is already spooled', async () => {
    const { fake, tunnel, dir } = await setup({ maxBytes: 1_500 });
    fake.reply = { status: 502 };
    const first = await tunnel.post(errorEnvelope(fake.dsn(), 'x'.repeat(500)));
    expect(first.status).toBe(200);
    const second = await tunnel.post(errorEnvelope(fake.dsn(), 'y'.repeat(500)));
    expect(second.status).toBe(503);
    expect(await second.json()).toMatchObject({ code: 'spool_full' });
    expect(requestLines(tunnel).at(-1)).toMatchObject({ status: 503, code: 'spool_full', outcome: 'failed' });
    expect(await entryFiles(dir)).toHaveLength(1);
    const notReady = await fetch(`http://127.0.0.1:${tunnel.address.port}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ code: 'spool_full' });
    // Once the drainer delivers what is spooled, there is room again and readiness returns.
    fake.reply = {};
    const deadline = Date.now() + 5_000;
    while ((await fetch(`http://127.0.0.1:${tunnel.address.port}/readyz`)).status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await readyz(tunnel)).toMatchObject({ status: 'ready', spool: { envelopes: 0 } });
  });

  it('answers 503 spool_write_failed when the spool directory disappeared', async () => {
    const { fake, tunnel, dir } = await setup();
    fake.reply = { status: 500 };
    await rm(dir, { recursive: true, force: true });
    const response = await tunnel.post(errorEnvelope(fake.dsn()));
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: 'spool_write_failed' });
  });

  it('spools a streamed body (over 256 KiB) whole, also when Sentry drops the connection mid-upload', async () => {
    const { fake, tunnel, dir } = await setup({ retry: { initialMs: 50, maxMs: 100 } });
    let up = false;
    fake.reply = () => (up ? {} : { status: 503 });
    const big = () => envelope({ event_id: eventId(), dsn: fake.dsn() }, [{ type: 'attachment', payload: randomBytes(600 * 1024), withLength: true }]);
    const answered503 = big();
    expect((await tunnel.post(answered503)).status).toBe(200);

    fake.cutAfterBytes = 100 * 1024;
    const cut = big();
    const response = await tunnel.post(cut);
    expect(response.status).toBe(200);
    expect(requestLines(tunnel).map((line) => line.outcome)).toEqual(['spooled', 'spooled']);
    const files = await entryFiles(dir);
    expect(files).toHaveLength(2);
    expect((await entryBody(dir, files[0] as string)).equals(answered503)).toBe(true);
    expect((await entryBody(dir, files[1] as string)).equals(cut)).toBe(true);

    fake.cutAfterBytes = undefined;
    up = true;
    await waitFor('both to be delivered', async () => (await entryFiles(dir)).length === 0);
    const bodies = fake.requests.map((request) => request.body);
    expect(bodies.some((body) => body.equals(answered503))).toBe(true);
    expect(bodies.some((body) => body.equals(cut))).toBe(true);

    // Forwarded fine: the copy kept on the way is deleted.
    expect((await tunnel.post(big())).status).toBe(200);
    expect(requestLines(tunnel).at(-1)).toMatchObject({ outcome: 'forwarded' });
    await waitFor('the temp copy to be deleted', async () => (await readdir(dir)).every((name) => name === '.lock'));
  });

  it('counts the copies of streamed bodies in flight against spool.maxBytes: one that does not fit answers 503 spool_full', async () => {
    const { fake, tunnel, dir } = await setup({ maxBytes: 700 * 1024 });
    // Sentry reads both bodies, then takes a while to answer 503.
    fake.reply = { status: 503, delayMs: 1_000 };
    const big = () => envelope({ event_id: eventId(), dsn: fake.dsn() }, [{ type: 'attachment', payload: randomBytes(600 * 1024), withLength: true }]);
    const bodies = [big(), big()];
    let answered = false;
    const answers = Promise.all(
      bodies.map(async (body) => {
        const response = await tunnel.post(body);
        return { status: response.status, code: response.status === 200 ? undefined : ((await response.json()) as { code: string }).code };
      }),
    ).finally(() => {
      answered = true;
    });
    // The most the spool directory held while both bodies were on their way (bounded: Sentry answers after 1 s).
    const onDisk = async () => {
      const sizes = await Promise.all((await readdir(dir)).filter((name) => name !== '.lock').map((name) => stat(join(dir, name)).then((entry) => entry.size, () => 0)));
      return sizes.reduce((a, b) => a + b, 0);
    };
    let most = 0;
    for (let polls = 0; polls < 200 && !answered; polls++) {
      most = Math.max(most, await onDisk());
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(fake.requests.map((request) => request.body.length).sort()).toEqual(bodies.map((body) => body.length).sort());
    expect(most).toBeGreaterThan(600 * 1024);
    expect(most).toBeLessThanOrEqual(700 * 1024);

    expect((await answers).sort((a, b) => a.status - b.status)).toEqual([{ status: 200, code: undefined }, { status: 503, code: 'spool_full' }]);
    const files = await entryFiles(dir);
    expect(files).toHaveLength(1);
    const spooled = await entryBody(dir, files[0] as string);
    expect(bodies.some((body) => body.equals(spooled))).toBe(true);
    await waitFor('the partial copy to be deleted', async () => (await readdir(dir)).every((name) => name === '.lock' || !name.startsWith('.tmp-')));
  });

  it('on shutdown, spools envelopes still on their way to Sentry and answers their clients 200', async () => {
    const { fake, tunnel, dir } = await setup({ retry: { initialMs: 10_000, maxMs: 10_000 } }, { server: { shutdownTimeoutMs: 200 } });
    fake.reply = { delayMs: 5_000 };
    const body = errorEnvelope(fake.dsn());
    const pending = tunnel.post(body);
    await fake.waitForRequests(1);
    await tunnel.shutdown();
    const response = await pending;
    expect(response.status).toBe(200);
    expect(requestLines(tunnel).at(-1)).toMatchObject({ status: 200, outcome: 'spooled', cause: 'shutdown' });
    const files = await entryFiles(dir);
    expect(files).toHaveLength(1);
    expect((await entryBody(dir, files[0] as string)).equals(body)).toBe(true);
    expect(await readdir(dir)).not.toContain('.lock');
  });
});

describe('spool start-up', () => {
  it('refuses to start when spool.dir cannot be a writable directory', async () => {
    const parent = await tempDir();
    const file = join(parent, 'a-file');
    await writeFile(file, 'not a directory');
    const fake = await FakeSentry.start();
    cleanups.push(() => fake.close());
    const started = startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, spool: { dir: join(file, 'spool') } });
    await expect(started).rejects.toBeInstanceOf(StartupError);
    await expect(started).rejects.toThrow(/spool\.dir .* is not a writable directory \(ENOTDIR/);
  });

  it('fails fast with ENOENT for a spool.dir the kernel will not create (under /proc), instead of hanging', async () => {
    const fake = await FakeSentry.start();
    cleanups.push(() => fake.close());
    const started = startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, spool: { dir: '/proc/sentry-tunnel-test/spool' } });
    await expect(started).rejects.toBeInstanceOf(StartupError);
    await expect(started).rejects.toThrow(/spool\.dir \/proc\/sentry-tunnel-test\/spool is not a writable directory \(ENOENT: no such file or directory, mkdir '\/proc\/sentry-tunnel-test'\)$/);
  }, 5_000);

  it('creates every missing level of spool.dir', async () => {
    const parent = await tempDir();
    const dir = join(parent, 'a', 'b', 'spool');
    const fake = await FakeSentry.start();
    cleanups.push(() => fake.close());
    const tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, spool: { dir } });
    cleanups.push(() => tunnel.shutdown());
    expect((await stat(dir)).isDirectory()).toBe(true);
    expect(tunnel.spool?.stats()).toEqual({ envelopes: 0, bytes: 0, full: false });
  });

  it('resumes what a previous run left, deletes half-written temp files and sets unreadable entries aside', async () => {
    const dir = await tempDir();
    const fake = await FakeSentry.start();
    cleanups.push(() => fake.close());
    fake.reply = { status: 503 };
    const first = await startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, spool: { dir, retry: { initialMs: 10_000, maxMs: 10_000 } } });
    const bodies = [errorEnvelope(fake.dsn(), 'one'), errorEnvelope(fake.dsn(), 'two')];
    for (const body of bodies) expect((await first.post(body)).status).toBe(200);
    await first.shutdown();

    await writeFile(join(dir, '.tmp-999-abcdef'), 'half a meta line');
    const corrupt = `${String(Date.now()).padStart(15, '0')}-000000-0000abcd.web.envelope`;
    await writeFile(join(dir, corrupt), 'no metadata line');
    fake.reply = {};
    const second = await startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, spool: { dir, retry: { initialMs: 20, maxMs: 50 } } });
    cleanups.push(() => second.shutdown());
    expect(second.logs().find((line) => String(line.msg).startsWith('spool: resuming'))).toMatchObject({ envelopes: 3, tempFilesRemoved: 1 });

    await waitFor('the previous run’s envelopes to be delivered', async () => (await entryFiles(dir)).length === 0);
    const delivered = fake.requests.slice(-2).map((request) => request.body);
    expect(delivered[0]?.equals(bodies[0] as Buffer)).toBe(true);
    expect(delivered[1]?.equals(bodies[1] as Buffer)).toBe(true);
    const names = await readdir(dir);
    expect(names).toContain(`${corrupt}.corrupt`);
    expect(names.some((name) => name.startsWith('.tmp-'))).toBe(false);
    expect(second.logs().some((line) => line.msg === 'spool: unreadable entry set aside as .corrupt')).toBe(true);
    expect(second.spool?.counters).toMatchObject({ delivered: 2, setAside: 1 });
  });

  it('refuses a directory another live tunnel has locked', async () => {
    const dir = await tempDir();
    // The test runner's parent process stands in for another tunnel: alive, on this host, not us.
    await writeFile(join(dir, '.lock'), JSON.stringify({ pid: process.ppid, hostname: hostname() }));
    const fake = await FakeSentry.start();
    cleanups.push(() => fake.close());
    const started = startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, spool: { dir } });
    await expect(started).rejects.toThrow(`spool.dir ${dir} is in use by another sentry-tunnel (pid ${process.ppid})`);
  });

  it('keeps, but never sends, envelopes of a project that is no longer configured', async () => {
    const dir = await tempDir();
    const fake = await FakeSentry.start();
    cleanups.push(() => fake.close());
    fake.reply = { status: 503 };
    const before = await startTestTunnel({ projects: { old: { dsn: fake.dsn('7') } }, spool: { dir, retry: { initialMs: 10_000, maxMs: 10_000 } } });
    expect((await before.post(errorEnvelope(fake.dsn('7')))).status).toBe(200);
    await before.shutdown();
    const sentBefore = fake.requests.length;

    fake.reply = {};
    const after = await startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, spool: { dir, retry: { initialMs: 20, maxMs: 40 } } });
    cleanups.push(() => after.shutdown());
    expect(after.logs().find((line) => line.project === 'old' && String(line.msg).includes('not configured'))?.level).toBe(40);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.requests).toHaveLength(sentBefore);
    expect(await entryFiles(dir)).toHaveLength(1);
    expect((await readyz(after)).spool?.envelopes).toBe(1);
  });
});

describe('spool configuration', () => {
  const projects = { web: { dsn: 'https://abc@o1.ingest.sentry.io/2' } };

  it('is off unless spool.dir is set, with Relay-like defaults', () => {
    expect(validateConfig({ projects }).spool).toEqual({ maxBytes: 524_288_000, maxAgeMs: 86_400_000, retry: { initialMs: 1_000, maxMs: 60_000 } });
  });

  it('lists spool problems with their paths', () => {
    expect(() => validateConfig({ projects, spool: { dir: '', maxBytes: 0, retry: { initialMs: 500, maxMs: 100 } } })).toThrow(
      /spool\.dir: .*\n\s+spool\.maxBytes: must be a whole number of bytes ≥ 1/,
    );
    expect(() => validateConfig({ projects, spool: { retry: { initialMs: 500, maxMs: 100 } } })).toThrow('spool.retry.maxMs: must be at least spool.retry.initialMs');
  });
});
