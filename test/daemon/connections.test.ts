// The daemon's connections on raw loopback sockets: a Host-less HTTP/1.1 request gets the catalogue's
// JSON, probes and scrapes keep their connection, and an early refusal of a large upload survives
// on the wire (lingering close) instead of being reset away.
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LINGER_BYTES } from '../../src/daemon/lingering-close.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { waitForLog } from '../helpers/log-lines.js';
import { REPO } from '../helpers/run-cli.js';
import { listeningUrl, runCli } from '../helpers/spawn-cli.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

const MiB = 1024 * 1024;

let sentry: FakeSentry;
let tunnel: TestTunnel;

beforeAll(async () => {
  sentry = await FakeSentry.start();
  tunnel = await startTestTunnel({ projects: { web: { dsn: sentry.dsn('2') } }, limits: { maxEnvelopeBytes: MiB, maxDecodedBytes: MiB } });
});

afterEach(() => {
  sentry.requests.length = 0;
});

afterAll(async () => {
  await tunnel.shutdown();
  await sentry.close();
});

/** Sends `requests` one after another on one socket; resolves with each raw response (bounded). */
function onOneSocket(port: number, requests: readonly string[], timeoutMs = 5_000): Promise<{ responses: string[]; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const responses: string[] = [];
    let buffer = '';
    let closedByServer = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answers within ${timeoutMs} ms; got ${JSON.stringify(buffer)}`));
    }, timeoutMs);
    const next = () => {
      const text = requests[responses.length];
      if (text === undefined) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ responses, closedByServer });
      } else socket.write(text);
    };
    socket.on('connect', next);
    socket.on('error', () => {});
    socket.on('end', () => {
      closedByServer = true;
    });
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      const headEnd = buffer.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffer.slice(0, headEnd))?.[1] ?? 0);
      if (buffer.length < headEnd + 4 + length) return;
      responses.push(buffer.slice(0, headEnd + 4 + length));
      buffer = buffer.slice(headEnd + 4 + length);
      if (closedByServer && responses.length < requests.length) {
        clearTimeout(timer);
        resolve({ responses, closedByServer });
      } else next();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ responses, closedByServer });
    });
  });
}

describe('a request without Host', () => {
  it('answers an HTTP/1.1 request without Host 400 bad_request with the JSON body, logged, and keeps serving', async () => {
    const { responses } = await onOneSocket(tunnel.address.port, [`POST /tunnel HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}`]);
    const [reply = ''] = responses;
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toMatch(/content-type: application\/json/i);
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(body).toEqual({ code: 'bad_request', error: 'HTTP/1.1 requests must carry a Host header.' });
    const [line] = await waitForLog(tunnel, (entry) => entry.msg === 'request' && entry.code === 'bad_request');
    expect(line).toMatchObject({ status: 400, outcome: 'rejected', method: 'POST', path: '/tunnel' });
    expect(sentry.requests).toHaveLength(0);
    const health = await onOneSocket(tunnel.address.port, ['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']);
    expect(health.responses[0]).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('still forwards an HTTP/1.0 request without Host (Host is optional there)', async () => {
    const body = errorEnvelope(sentry.dsn('2')).toString('latin1');
    const { responses } = await onOneSocket(tunnel.address.port, [`POST /tunnel HTTP/1.0\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`]);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(await sentry.waitForRequests(1)).toHaveLength(1);
  });
});

describe('probes and scrapes', () => {
  it('keeps the connection of /healthz, /readyz and /metrics alive: three probes, one socket', async () => {
    const probe = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const { responses, closedByServer } = await onOneSocket(tunnel.address.port, [probe('/healthz'), probe('/readyz'), probe('/metrics'), probe('/healthz')]);
    expect(responses).toHaveLength(4);
    for (const reply of responses) {
      expect(reply).toMatch(/^HTTP\/1\.1 200 /);
      expect(reply).toMatch(/\r\nconnection: keep-alive\r\n/i);
    }
    expect(closedByServer).toBe(false);
  });
});

/** A chunked upload of `totalBytes` starting with a valid envelope, written as fast as the socket takes it. */
function oversizedUpload(url: string, totalBytes: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (value: { status: number; body: string } | { error: string }) => {
      if (!settled) resolve(value);
      settled = true;
    };
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/x-sentry-envelope' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error: NodeJS.ErrnoException) => settle({ error: error.code ?? error.message }));
      res.on('end', () => settle({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => settle({ error: error.code ?? error.message }));
    req.write(errorEnvelope(sentry.dsn('2')));
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    for (let written = 0; written < totalBytes; written += chunk.length) req.write(chunk);
    req.end();
    // A busy client (a page's main thread) reads its socket late: by then the answer must still be there.
    const busyUntil = Date.now() + 100;
    while (Date.now() < busyUntil);
  });
}

describe('early refusals of large uploads', () => {
  it('a 30 MiB chunked upload over the 20 MiB limit reads its 413 envelope_too_large every time, never a reset', async () => {
    // The tunnel runs in its own process, so this (busy) client cannot slow it down.
    const cli = runCli(['serve', '--dsn', sentry.dsn('2'), '--port', '0'], { cwd: REPO });
    try {
      const url = listeningUrl(await cli.waitForLine(/listening on/));
      const outcomes: ({ status: number; body: string } | { error: string })[] = [];
      for (let run = 0; run < 12; run++) outcomes.push(await oversizedUpload(url, 30 * MiB));
      expect(outcomes.filter((outcome) => 'error' in outcome)).toEqual([]);
      for (const outcome of outcomes) {
        expect(outcome).toMatchObject({ status: 413 });
        expect(JSON.parse((outcome as { body: string }).body)).toMatchObject({ code: 'envelope_too_large' });
      }
      expect(sentry.requests).toHaveLength(0);
    } finally {
      cli.child.kill('SIGTERM');
      await cli.exited();
    }
  }, 60_000);

  it('stops lingering after its byte budget: a connection that keeps sending is closed', async () => {
    // Half-open, as a client that keeps uploading after the answer and the tunnel's FIN.
    const socket = connect({ port: tunnel.address.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => {});
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const head = errorEnvelope(sentry.dsn('2'));
    socket.write(`POST /tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${head.length.toString(16)}\r\n`);
    socket.write(Buffer.concat([head, Buffer.from('\r\n')]));
    const chunk = Buffer.alloc(MiB, 0x61);
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    let sent = 0;
    // Bounded: the budget is LINGER_BYTES past the 1 MiB limit; stop well after it.
    while (!socket.destroyed && sent < LINGER_BYTES + 16 * MiB) {
      sent += MiB;
      if (!socket.write(framed)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"code":"envelope_too_large"');
    expect(sent).toBeGreaterThan(LINGER_BYTES);
  }, 30_000);
});
