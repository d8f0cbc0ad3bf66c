// Filters and enrichment end to end: real SDK envelopes through a tunnel on loopback to the fake
// Sentry, asserting what arrived upstream byte for byte, what the client was answered, and what was logged.
import { gzipSync } from 'node:zlib';
import type { Event } from '@sentry/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { parseEnvelope } from '../../src/core/envelope.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { allByteValues, envelope, eventId } from '../helpers/envelopes.js';
import {
  sdkAttachmentEnvelope,
  sdkClientReportEnvelope,
  sdkErrorEnvelope,
  sdkErrorWithReplayEnvelope,
  sdkSessionEnvelope,
  sdkTransactionEnvelope,
} from '../helpers/sdk-envelopes.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let fake: FakeSentry;
const tunnels: TestTunnel[] = [];

beforeAll(async () => {
  fake = await FakeSentry.start();
});
afterEach(async () => {
  await Promise.all(tunnels.splice(0).map((tunnel) => tunnel.shutdown()));
  fake.requests.length = 0;
  fake.reply = {};
});
afterAll(async () => {
  await fake.close();
});

async function tunnelWith(rules: Pick<ConfigInput, 'filters' | 'enrich'>): Promise<TestTunnel> {
  const tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, ...rules });
  tunnels.push(tunnel);
  return tunnel;
}

/** The request line the tunnel logged for the last request. */
function lastRequestLog(tunnel: TestTunnel): Record<string, unknown> | undefined {
  // rawLogs(), not logs: the helper's `logs` getter is copied as a value by Object.assign at start-up.
  const lines = tunnel
    .rawLogs()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return lines.filter((line) => line.msg === 'request').at(-1);
}

/** The JSON payloads of the items that reached the fake Sentry. */
function upstreamPayloads(index = 0): Record<string, unknown>[] {
  const body = fake.requests[index]?.body;
  if (!body) throw new Error('nothing arrived upstream');
  return parseEnvelope(body).items.map((item) => JSON.parse(item.payload.toString()) as Record<string, unknown>);
}

/** Lets the tunnel finish its log line after the response was read. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

const ALL_RULES: ConfigInput['filters'] = [
  { dropItemTypes: ['client_report'] },
  {
    dropEvents: {
      message: ['ResizeObserver loop', '/^Script error\\.?$/'],
      exceptionType: ['ChunkLoadError'],
      environment: ['development'],
      release: ['/-canary$/'],
      level: ['/^debug$/'],
      userAgent: ['/bot|crawler|spider/i'],
    },
  },
];

describe('filters', () => {
  const cases: { rule: string; drop: () => Buffer; keep: () => Buffer; headers?: Record<string, string> }[] = [
    {
      rule: 'dropEvents.message',
      drop: () => sdkErrorEnvelope(fake.dsn(), { exception: undefined, message: 'ResizeObserver loop completed with undelivered notifications.' }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { exception: undefined, message: 'ResizeObserver was fine' }),
    },
    {
      rule: 'dropEvents.message',
      drop: () => sdkErrorEnvelope(fake.dsn(), { exception: { values: [{ type: 'Error', value: 'Script error.' }] } }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { exception: { values: [{ type: 'Error', value: 'Script error. Not quite' }] } }),
    },
    {
      rule: 'dropEvents.message',
      drop: () => sdkErrorEnvelope(fake.dsn(), { exception: undefined, logentry: { message: 'x', formatted: 'ResizeObserver loop limit exceeded' } as Event['logentry'] }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { exception: undefined, logentry: { message: 'x', formatted: 'resizeobserver loop (case differs)' } as Event['logentry'] }),
    },
    {
      rule: 'dropEvents.exceptionType',
      drop: () => sdkErrorEnvelope(fake.dsn(), { exception: { values: [{ type: 'TypeError', value: 'a' }, { type: 'ChunkLoadError', value: 'Loading chunk 7 failed.' }] } }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { exception: { values: [{ type: 'ChunkError', value: 'ChunkLoadError in the message only' }] } }),
    },
    {
      rule: 'dropEvents.environment',
      drop: () => sdkErrorEnvelope(fake.dsn(), { environment: 'development' }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { environment: 'staging' }),
    },
    {
      rule: 'dropEvents.release',
      drop: () => sdkErrorEnvelope(fake.dsn(), { release: 'web@2.0.0-canary' }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { release: 'web@2.0.0-canary.1' }),
    },
    {
      rule: 'dropEvents.level',
      drop: () => sdkErrorEnvelope(fake.dsn(), { level: 'debug' }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { level: 'info' }),
    },
    {
      rule: 'dropEvents.userAgent',
      drop: () => sdkErrorEnvelope(fake.dsn(), { request: { headers: { 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1)' } } }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { request: { headers: { 'User-Agent': 'Mozilla/5.0 Firefox/128.0' } } }),
    },
    {
      // No User-Agent in the event: the request's own header decides.
      rule: 'dropEvents.userAgent',
      drop: () => sdkErrorEnvelope(fake.dsn(), { request: { url: 'https://app.example.com/' } }),
      keep: () => sdkErrorEnvelope(fake.dsn(), { request: { url: 'https://app.example.com/' } }),
      headers: { 'user-agent': 'AhrefsCRAWLER/7.0' },
    },
    {
      rule: 'dropEvents.environment',
      drop: () => sdkTransactionEnvelope(fake.dsn(), 3, { environment: 'development' }),
      keep: () => sdkTransactionEnvelope(fake.dsn(), 3, { environment: 'production' }),
    },
    {
      rule: 'dropItemTypes',
      drop: () => sdkClientReportEnvelope(fake.dsn()),
      keep: () => sdkSessionEnvelope(fake.dsn()),
    },
  ];

  it.each(cases)('$rule drops a matching envelope: 200 like Sentry, nothing forwarded, counted', async ({ rule, drop, headers }) => {
    const tunnel = await tunnelWith({ filters: ALL_RULES });
    const bytes = drop();
    const response = await tunnel.post(bytes, { headers });
    expect(response.status).toBe(200);
    const header = JSON.parse(bytes.subarray(0, bytes.indexOf(0x0a)).toString()) as { event_id?: string };
    expect(await response.json()).toEqual(header.event_id ? { id: header.event_id } : {});
    await settle();
    expect(fake.requests).toHaveLength(0);
    const type = parseEnvelope(bytes).items[0]?.type;
    expect(lastRequestLog(tunnel)).toMatchObject({ status: 200, outcome: 'filtered', dropped: [{ reason: rule, type }] });
  });

  it.each(cases)('$rule keeps a near miss byte-for-byte', async ({ keep }) => {
    const tunnel = await tunnelWith({ filters: ALL_RULES });
    const bytes = keep();
    const response = await tunnel.post(bytes, { headers: { 'user-agent': 'Mozilla/5.0 Firefox/128.0' } });
    expect(response.status).toBe(200);
    await fake.waitForRequests(1);
    expect(fake.requests[0]?.body.equals(bytes)).toBe(true);
    expect(lastRequestLog(tunnel)).toMatchObject({ outcome: 'forwarded' });
    expect(lastRequestLog(tunnel)?.dropped).toBeUndefined();
  });

  it('a dropped event takes its attachments along; items of their own go on with a correct Content-Length', async () => {
    const tunnel = await tunnelWith({ filters: [{ dropEvents: { message: ['with attachment'] } }] });
    const id = eventId();
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    // An event and its binary attachment, between two items that do not belong to the event.
    const bytes = envelope({ event_id: id, dsn: fake.dsn() }, [
      { type: 'client_report', payload: { timestamp: 1_700_000_000, discarded_events: [{ reason: 'sample_rate', category: 'error', quantity: 1 }] } },
      { type: 'event', payload: { event_id: id, message: 'with attachment', level: 'error' } },
      { type: 'attachment', payload: binary, withLength: true, headers: { filename: 'dump.bin', content_type: 'application/octet-stream' } },
      { type: 'session', payload: { sid: eventId(), status: 'ok', started: '2026-11-26T10:00:00Z' } },
    ]);
    const original = parseEnvelope(bytes);
    expect(original.items.map((item) => item.type)).toEqual(['client_report', 'event', 'attachment', 'session']);

    const response = await tunnel.post(bytes);
    expect(response.status).toBe(200);
    const [request] = await fake.waitForRequests(1);
    const forwarded = parseEnvelope(request?.body ?? Buffer.alloc(0));
    expect(forwarded.items.map((item) => item.type)).toEqual(['client_report', 'session']);
    expect(forwarded.rawHeader?.equals(original.rawHeader ?? Buffer.alloc(0))).toBe(true);
    expect(forwarded.items[0]?.raw?.equals(original.items[0]?.raw ?? Buffer.alloc(0))).toBe(true);
    expect(forwarded.items[1]?.raw?.equals(original.items[3]?.raw ?? Buffer.alloc(0))).toBe(true);
    expect(Number(request?.headers['content-length'])).toBe(request?.body.length);
    await settle();
    expect(lastRequestLog(tunnel)).toMatchObject({
      outcome: 'forwarded',
      dropped: [
        { reason: 'dropEvents.message', type: 'event' },
        { reason: 'dropEvents.message', type: 'attachment' },
      ],
    });
  });

  it('an envelope of an event and its attachment, the event dropped, is filtered whole: nothing reaches Sentry', async () => {
    const tunnel = await tunnelWith({ filters: [{ dropEvents: { message: ['with attachment'] } }] });
    const bytes = sdkAttachmentEnvelope(fake.dsn());
    const response = await tunnel.post(bytes);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: (JSON.parse(bytes.subarray(0, bytes.indexOf(0x0a)).toString()) as { event_id: string }).event_id });
    await settle();
    expect(fake.requests).toHaveLength(0);
    expect(lastRequestLog(tunnel)).toMatchObject({ outcome: 'filtered' });
  });

  it('dropItemTypes: ["event"] drops only events; an attachment goes on', async () => {
    const tunnel = await tunnelWith({ filters: [{ dropItemTypes: ['event'] }] });
    const bytes = sdkAttachmentEnvelope(fake.dsn());
    expect((await tunnel.post(bytes)).status).toBe(200);
    const [request] = await fake.waitForRequests(1);
    expect(parseEnvelope(request?.body ?? Buffer.alloc(0)).items.map((item) => item.type)).toEqual(['attachment']);
  });

  it('answers {} when a filtered envelope has no event_id', async () => {
    const tunnel = await tunnelWith({ filters: [{ dropItemTypes: ['session'] }] });
    const response = await tunnel.post(envelope({ dsn: fake.dsn() }, [{ type: 'session', payload: { sid: eventId() } }]));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({});
    await settle();
    expect(fake.requests).toHaveLength(0);
  });
});

describe('enrichment', () => {
  it('adds tags to events and transactions; the SDK tag wins by default', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { server_region: 'eu-west-1', tunnel: 'eu-1' } } });
    await tunnel.post(sdkErrorEnvelope(fake.dsn(), { tags: { tunnel: 'from-sdk' } }));
    await tunnel.post(sdkTransactionEnvelope(fake.dsn(), 5));
    await fake.waitForRequests(2);
    expect(upstreamPayloads(0)[0]?.tags).toEqual({ tunnel: 'from-sdk', server_region: 'eu-west-1' });
    expect(upstreamPayloads(1)[0]?.tags).toEqual({ server_region: 'eu-west-1', tunnel: 'eu-1' });
    for (const request of fake.requests) {
      expect(Number(request.headers['content-length'])).toBe(request.body.length);
      expect(request.headers['content-encoding']).toBeUndefined();
    }
  });

  it('overrideTags: the configured value replaces the SDK tag; tags as pairs keep their form', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { tunnel: 'eu-1' }, overrideTags: true } });
    await tunnel.post(sdkErrorEnvelope(fake.dsn(), { tags: { tunnel: 'from-sdk', other: 'x' } }));
    await tunnel.post(envelope({ dsn: fake.dsn() }, [{ type: 'event', payload: { message: 'm', tags: [['tunnel', 'sdk'], ['b', 'c']] } }]));
    await fake.waitForRequests(2);
    expect(upstreamPayloads(0)[0]?.tags).toEqual({ tunnel: 'eu-1', other: 'x' });
    expect(upstreamPayloads(1)[0]?.tags).toEqual([['tunnel', 'eu-1'], ['b', 'c']]);
  });

  it('does not touch items that are not events or transactions', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { tunnel: 'eu-1' }, clientIp: true } });
    const bytes = sdkSessionEnvelope(fake.dsn());
    await tunnel.post(bytes);
    const [request] = await fake.waitForRequests(1);
    expect(request?.body.equals(bytes)).toBe(true);
  });

  it('clientIp sets user.ip_address when absent or {{auto}}, keeps an address the SDK set', async () => {
    const tunnel = await tunnelWith({ enrich: { clientIp: true } });
    await tunnel.post(sdkErrorEnvelope(fake.dsn()));
    await tunnel.post(sdkErrorEnvelope(fake.dsn(), { user: { id: '42', ip_address: '{{auto}}' } }));
    await tunnel.post(sdkErrorEnvelope(fake.dsn(), { user: { id: '7', ip_address: '198.51.100.9' } }));
    await fake.waitForRequests(3);
    expect(upstreamPayloads(0)[0]?.user).toEqual({ ip_address: '127.0.0.1' });
    expect(upstreamPayloads(1)[0]?.user).toEqual({ id: '42', ip_address: '127.0.0.1' });
    expect(upstreamPayloads(2)[0]?.user).toEqual({ id: '7', ip_address: '198.51.100.9' });
  });

  it('without clientIp no address is added', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { a: 'b' } } });
    await tunnel.post(sdkErrorEnvelope(fake.dsn()));
    await fake.waitForRequests(1);
    expect(upstreamPayloads(0)[0]?.user).toBeUndefined();
  });

  it('a binary replay recording passes byte-identical through an envelope whose event was enriched', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { server_region: 'eu-west-1' } } });
    const { bytes, recording, recordingItem } = sdkErrorWithReplayEnvelope(fake.dsn());
    const response = await tunnel.post(bytes);
    expect(response.status).toBe(200);
    const [request] = await fake.waitForRequests(1);
    const body = request?.body ?? Buffer.alloc(0);
    expect(body.equals(bytes)).toBe(false);
    // The recording item (header line, compressed payload, newline) arrives exactly as sent.
    expect(body.subarray(body.length - recordingItem.length).equals(recordingItem)).toBe(true);
    const forwarded = parseEnvelope(body);
    expect(forwarded.items.map((item) => item.type)).toEqual(['event', 'replay_event', 'replay_recording']);
    expect(forwarded.items[2]?.payload.equals(recording)).toBe(true);
    expect((JSON.parse(forwarded.items[0]?.payload.toString() ?? '{}') as { tags?: unknown }).tags).toEqual({ server_region: 'eu-west-1' });
  });

  it('a gzip envelope is decoded, processed and sent uncompressed with a correct Content-Length', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { tunnel: 'eu-1' } } });
    const bytes = sdkAttachmentEnvelope(fake.dsn());
    const response = await tunnel.post(gzipSync(bytes), { headers: { 'content-encoding': 'gzip' } });
    expect(response.status).toBe(200);
    const [request] = await fake.waitForRequests(1);
    expect(request?.headers['content-encoding']).toBeUndefined();
    expect(Number(request?.headers['content-length'])).toBe(request?.body.length);
    const forwarded = parseEnvelope(request?.body ?? Buffer.alloc(0));
    expect((JSON.parse(forwarded.items[0]?.payload.toString() ?? '{}') as { tags?: unknown }).tags).toEqual({ tunnel: 'eu-1' });
    expect(forwarded.items[1]?.raw?.equals(parseEnvelope(bytes).items[1]?.raw ?? Buffer.alloc(0))).toBe(true);
  });

  it('a gzip envelope nothing applies to goes on as the original compressed bytes', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { tunnel: 'eu-1' } } });
    const compressed = gzipSync(sdkSessionEnvelope(fake.dsn()));
    await tunnel.post(compressed, { headers: { 'content-encoding': 'gzip' } });
    const [request] = await fake.waitForRequests(1);
    expect(request?.headers['content-encoding']).toBe('gzip');
    expect(request?.body.equals(compressed)).toBe(true);
  });

  it('a body above the streaming threshold is read whole and processed; its attachment stays intact', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { tunnel: 'eu-1' } } });
    const big = Buffer.concat(Array.from({ length: 1300 }, () => allByteValues(1)));
    const bytes = sdkAttachmentEnvelope(fake.dsn(), big);
    expect(bytes.length).toBeGreaterThan(256 * 1024);
    await tunnel.post(bytes);
    const [request] = await fake.waitForRequests(1);
    const forwarded = parseEnvelope(request?.body ?? Buffer.alloc(0));
    expect(forwarded.items[1]?.payload.equals(big)).toBe(true);
    expect((JSON.parse(forwarded.items[0]?.payload.toString() ?? '{}') as { tags?: unknown }).tags).toEqual({ tunnel: 'eu-1' });
  });

  it('a whole-body read still enforces limits.maxEnvelopeBytes while streaming in', async () => {
    const tunnel = await startTestTunnel({ projects: { web: { dsn: fake.dsn() } }, limits: { maxEnvelopeBytes: 300 * 1024 }, enrich: { clientIp: true } });
    tunnels.push(tunnel);
    const bytes = sdkAttachmentEnvelope(fake.dsn(), Buffer.alloc(400 * 1024, 1));
    const chunks = [bytes.subarray(0, 1000), bytes.subarray(1000)];
    const body = new ReadableStream({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const response = await fetch(tunnel.url, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(413);
    expect(((await response.json()) as { code: string }).code).toBe('envelope_too_large');
    await settle();
    expect(fake.requests).toHaveLength(0);
  });
});

describe('malformed envelopes with rules configured', () => {
  const header = () => JSON.stringify({ event_id: eventId(), dsn: fake.dsn() });
  it.each([
    ['a length past the end', () => `${header()}\n{"type":"attachment","length":500}\nshort\n`],
    ['an item header that is not JSON', () => `${header()}\n{"type":"event",}\n{}\n`],
    ['a payload not followed by a newline', () => `${header()}\n{"type":"attachment","length":2}\nabc\n`],
  ])('%s → 400 malformed_envelope, nothing forwarded', async (_name, body) => {
    const tunnel = await tunnelWith({ filters: [{ dropItemTypes: ['client_report'] }] });
    const response = await tunnel.post(body());
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'malformed_envelope' });
    await settle();
    expect(fake.requests).toHaveLength(0);
    expect(lastRequestLog(tunnel)).toMatchObject({ status: 400, code: 'malformed_envelope', outcome: 'rejected' });
  });

  it('without rules the envelope is not parsed: the same bytes are forwarded and Sentry decides', async () => {
    const tunnel = await tunnelWith({});
    const body = `${header()}\n{"type":"attachment","length":500}\nshort\n`;
    await tunnel.post(body);
    const [request] = await fake.waitForRequests(1);
    expect(request?.body.toString()).toBe(body);
  });

  it('the daemon keeps serving after a malformed envelope', async () => {
    const tunnel = await tunnelWith({ enrich: { tags: { a: 'b' } } });
    expect((await tunnel.post(`${header()}\n{oops}\n`)).status).toBe(400);
    expect((await tunnel.post(sdkErrorEnvelope(fake.dsn()))).status).toBe(200);
    await fake.waitForRequests(1);
  });
});
