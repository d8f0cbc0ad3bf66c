// @sentry/node posting through the tunnel: its transport gzips envelopes over 32 KiB, and they must
// arrive at Sentry intact, whether the tunnel buffers them or streams them.
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import * as Sentry from '@sentry/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope, parseItemJson } from '../../src/core/envelope.js';
import { FakeSentry, type RecordedRequest } from '../helpers/fake-sentry.js';
import { type TestTunnel, startTestTunnel } from '../helpers/tunnel.js';

let sentry: FakeSentry;
let tunnel: TestTunnel;
/** What the SDK itself heard back for each event it sent. */
const answers = new Map<string, number | undefined>();

beforeAll(async () => {
  sentry = await FakeSentry.start();
  tunnel = await startTestTunnel({ projects: { api: { dsn: sentry.dsn('3') } } });
  // The SDK's transport honours http_proxy; loopback must never go through one.
  process.env.no_proxy = [process.env.no_proxy, '127.0.0.1'].filter(Boolean).join(',');
  const client = Sentry.init({ dsn: sentry.dsn('3'), tunnel: tunnel.url, defaultIntegrations: false, sendClientReports: false });
  client?.on('afterSendEvent', (event, response) => answers.set(event.event_id ?? '', response.statusCode));
});

afterEach(() => {
  sentry.requests.length = 0;
});

afterAll(async () => {
  await Sentry.close(2_000);
  await tunnel?.shutdown();
  await sentry?.close();
});

/** Text that compresses like real event data does: words, not one repeated byte. */
function words(bytes: number): string {
  const vocabulary = ['checkout', 'cart', 'user', 'timeout', 'retry', 'payment', 'session', 'render', 'db.query', 'span'];
  const out: string[] = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const word = `${vocabulary[(i * 7919) % vocabulary.length]}-${i}`;
    out.push(word);
    length += word.length + 1;
  }
  return out.join(' ');
}

async function sendMessage(message: string, payload: string): Promise<{ eventId: string; arrived: RecordedRequest }> {
  const eventId = Sentry.captureMessage(message, { extra: { payload } });
  expect(await Sentry.flush(5_000)).toBe(true);
  const [arrived] = await sentry.waitForRequests(1);
  if (!arrived) throw new Error('nothing arrived upstream');
  return { eventId, arrived };
}

function eventIn(body: Buffer): { header: Record<string, unknown>; event: Record<string, unknown> } {
  const envelope = parseEnvelope(body);
  const item = envelope.items.find((candidate) => candidate.type === 'event');
  if (!item) throw new Error('no event item');
  return { header: { ...envelope.header }, event: parseItemJson(item) ?? {} };
}

describe('@sentry/node through the tunnel', () => {
  it('sends an event over 32 KiB gzip-compressed, and Sentry receives it intact', async () => {
    const payload = words(48 * 1024);
    const { eventId, arrived } = await sendMessage('a large event', payload);

    expect(arrived.url).toBe('/api/3/envelope/?sentry_version=7&sentry_key=abc123def456');
    expect(arrived.headers['content-encoding']).toBe('gzip');
    expect(arrived.body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(arrived.body.length).toBeLessThan(payload.length / 2);
    const { header, event } = eventIn(gunzipSync(arrived.body));
    expect(header).toMatchObject({ event_id: eventId, dsn: sentry.dsn('3'), sdk: { name: 'sentry.javascript.node' } });
    expect(event).toMatchObject({ event_id: eventId, message: 'a large event', extra: { payload } });
    expect(answers.get(eventId)).toBe(200);
  });

  it('streams a gzip body larger than the tunnel buffers (256 KiB on the wire) through intact', async () => {
    // Random bytes as base64 barely compress, so the wire body stays over 256 KiB.
    const payload = randomBytes(300 * 1024).toString('base64');
    const { eventId, arrived } = await sendMessage('a very large event', payload);

    expect(arrived.headers['content-encoding']).toBe('gzip');
    expect(arrived.body.length).toBeGreaterThan(256 * 1024);
    const { event } = eventIn(gunzipSync(arrived.body));
    expect(event).toMatchObject({ event_id: eventId, extra: { payload } });
    expect(answers.get(eventId)).toBe(200);
  });

  it('sends a small event uncompressed, and it arrives as sent', async () => {
    const { eventId, arrived } = await sendMessage('a small event', 'tiny');

    expect(arrived.headers['content-encoding']).toBeUndefined();
    expect(eventIn(arrived.body).event).toMatchObject({ event_id: eventId, message: 'a small event', extra: { payload: 'tiny' } });
    expect(answers.get(eventId)).toBe(200);
  });
});
