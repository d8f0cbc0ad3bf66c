// Reading the body over a real socket: strict UTF-8 in the header line, no byte upstream before the
// decoder counted it (deflate bomb), and request log lines that say how many bytes were read.
import { createDeflate, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { type RawResponse, send } from '../helpers/http.js';
import { waitForLog } from '../helpers/log-lines.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let sentry: FakeSentry;
let tunnel: TestTunnel;

beforeAll(async () => {
  sentry = await FakeSentry.start();
  tunnel = await startTestTunnel({
    projects: { web: { dsn: sentry.dsn('2') } },
    limits: { maxEnvelopeBytes: 512 * KiB, maxDecodedBytes: MiB, maxHeaderLineBytes: 1024 },
  });
});

afterEach(() => {
  sentry.requests.length = 0;
});

afterAll(async () => {
  await tunnel.shutdown();
  await sentry.close();
});

function expectError(res: RawResponse, code: keyof typeof ERRORS): void {
  expect(res.status).toBe(ERRORS[code].status);
  expect(res.json()).toMatchObject({ code, error: expect.any(String) });
}

/** The latest request line with this status. */
async function requestLine(status: number): Promise<Record<string, unknown> | undefined> {
  return (await waitForLog(tunnel, (line) => line.msg === 'request' && line.status === status)).at(-1);
}

/** `header` JSON text with `bytes` spliced into the value of "release". */
function headerWith(bytes: Buffer): Buffer {
  const [before, after] = `{"dsn":"${sentry.dsn('2')}","release":"a__b"}`.split('__') as [string, string];
  return Buffer.concat([Buffer.from(before), bytes, Buffer.from(`${after}\n{"type":"event"}\n{}\n`)]);
}

/** A deflate body that starts with a valid header line and decodes to `decodedBytes` (zeros compress ~1000:1). */
async function deflateBomb(decodedBytes: number): Promise<Buffer> {
  const deflate = createDeflate();
  const out: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => out.push(chunk));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  deflate.write(`${JSON.stringify({ dsn: sentry.dsn('2') })}\n{"type":"attachment"}\n`);
  const zeros = Buffer.alloc(MiB);
  for (let written = 0; written < decodedBytes; written += zeros.length) {
    if (!deflate.write(zeros)) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await done;
  return Buffer.concat(out);
}

describe('the envelope header line must be UTF-8', () => {
  for (const [name, bytes] of [
    ['FF FE', Buffer.from([0xff, 0xfe])],
    ['an overlong NUL (C0 80)', Buffer.from([0xc0, 0x80])],
    ['a lone continuation byte', Buffer.from([0x80])],
    ['a truncated sequence', Buffer.from([0xe2, 0x82])],
  ] as const) {
    it(`refuses ${name} inside a header string with 400 invalid_envelope_header, sending nothing`, async () => {
      const res = await send({ url: tunnel.url, body: headerWith(bytes) });
      expectError(res, 'invalid_envelope_header');
      expect(res.json().error).toContain('UTF-8');
      expect(sentry.requests).toHaveLength(0);
    });
  }

  it('forwards valid multi-byte UTF-8 (é, 🙂) in header strings byte for byte', async () => {
    const body = headerWith(Buffer.from('é🙂'));
    const res = await send({ url: tunnel.url, body });
    expect(res.status).toBe(200);
    const [arrived] = await sentry.waitForRequests(1);
    expect(arrived?.body.equals(body)).toBe(true);
  });

  it('forwards a header string holding U+FFFD itself (EF BF BD), which is valid UTF-8', async () => {
    const body = headerWith(Buffer.from('\uFFFD'));
    const res = await send({ url: tunnel.url, body });
    expect(res.status).toBe(200);
    const [arrived] = await sentry.waitForRequests(1);
    expect(arrived?.body.equals(body)).toBe(true);
  });

  it('refuses invalid bytes in a header line that arrives in several chunks', async () => {
    const body = headerWith(Buffer.from([0xff]));
    const res = await send({ url: tunnel.url, chunks: [body.subarray(0, 10), body.subarray(10, 30), body.subarray(30)] });
    expectError(res, 'invalid_envelope_header');
    expect(res.json().error).toContain('UTF-8');
    expect(sentry.requests).toHaveLength(0);
  });
});

describe('compressed bodies', () => {
  it('sends no byte of a deflate bomb upstream: 413 envelope_too_large, no connection to Sentry', async () => {
    const fresh = await FakeSentry.start();
    const bombTunnel = await startTestTunnel({
      projects: { web: { dsn: fresh.dsn('2') } },
      limits: { maxEnvelopeBytes: 512 * KiB, maxDecodedBytes: 512 * KiB },
      log: { level: 'silent' },
    });
    try {
      // Over the 256 KiB buffering threshold on the wire, so the body would switch to streaming.
      const bomb = await deflateBomb(400 * MiB);
      expect(bomb.length).toBeGreaterThan(300 * KiB);
      for (let run = 0; run < 3; run++) {
        const res = await send({ url: bombTunnel.url, body: bomb, headers: { 'content-encoding': 'deflate' } }).catch((error: Error) => error);
        if (res instanceof Error) throw res;
        expectError(res, 'envelope_too_large');
      }
      expect(fresh.connections).toBe(0);
      expect(fresh.requests).toHaveLength(0);
    } finally {
      await bombTunnel.shutdown();
      await fresh.close();
    }
  });
});

describe('the request log says how many bytes were read', () => {
  it('logs the wire bytes of a body refused for its header line', async () => {
    const body = headerWith(Buffer.from([0xff]));
    const res = await send({ url: tunnel.url, body });
    expectError(res, 'invalid_envelope_header');
    const line = await requestLine(400);
    expect(line).toMatchObject({ code: 'invalid_envelope_header', bytesIn: body.length });
  });

  it('logs the bytes read of a header line over maxHeaderLineBytes, not 0', async () => {
    const chunks = [Buffer.from(`{"dsn":"${sentry.dsn('2')}","x":"`), Buffer.alloc(3 * KiB, 0x61)];
    const res = await send({ url: tunnel.url, chunks });
    expectError(res, 'header_too_large');
    const line = await requestLine(400);
    expect(line?.code).toBe('header_too_large');
    expect(line?.bytesIn).toBeGreaterThan(1024);
    expect(line?.bytesIn).toBeLessThanOrEqual(chunks[0]!.length + 3 * KiB);
  });

  it('logs the wire bytes of a small gzip body refused for what it decodes to, not 0', async () => {
    const body = gzipSync(Buffer.concat([Buffer.from(`{"dsn":"${sentry.dsn('2')}"}\n`), Buffer.alloc(4 * MiB)]));
    const res = await send({ url: tunnel.url, body, headers: { 'content-encoding': 'gzip' } });
    expectError(res, 'envelope_too_large');
    const line = await requestLine(413);
    expect(line?.code).toBe('envelope_too_large');
    expect(line?.bytesIn).toBe(body.length);
    expect(sentry.requests).toHaveLength(0);
  });
});
