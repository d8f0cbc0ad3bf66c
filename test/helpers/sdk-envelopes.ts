// Envelopes built and serialised by the Sentry JavaScript SDK itself (@sentry/core), so the parser is
// tested on the bytes browsers really send, binary items included.
import { deflateSync } from 'node:zlib';
import {
  type Envelope,
  type Event,
  createAttachmentEnvelopeItem,
  createClientReportEnvelope,
  createEnvelope,
  createEventEnvelope,
  createSessionEnvelope,
  makeDsn,
  makeSession,
  serializeEnvelope,
} from '@sentry/core';
import { allByteValues, eventId } from './envelopes.js';

/** The SDK writes the DSN into the envelope header only when a tunnel is configured, as it is here. */
const TUNNEL = 'https://app.example.com/tunnel';
const SDK = { sdk: { name: 'sentry.javascript.browser', version: '11.12.0', integrations: [], packages: [] } };

export function serialize(envelope: Envelope): Buffer {
  const bytes = serializeEnvelope(envelope);
  return typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes);
}

/** A browser error event, with whatever fields a test needs on top. */
export function sdkErrorEnvelope(dsn: string, event: Event = {}): Buffer {
  const id = event.event_id ?? eventId();
  return serialize(
    createEventEnvelope(
      {
        event_id: id,
        level: 'error',
        platform: 'javascript',
        timestamp: 1_700_000_000.5,
        environment: 'production',
        release: 'web@1.4.2',
        exception: { values: [{ type: 'TypeError', value: "Cannot read properties of undefined (reading 'id')", mechanism: { type: 'onerror', handled: false } }] },
        request: { url: 'https://app.example.com/cart', headers: { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0' } },
        breadcrumbs: [{ category: 'ui.click', message: 'button#pay', level: 'info', timestamp: 1_700_000_000.1 }],
        ...event,
      },
      makeDsn(dsn),
      SDK,
      TUNNEL,
    ),
  );
}

/** A pageload transaction with `spanCount` spans (60 spans ≈ 20 KB). */
export function sdkTransactionEnvelope(dsn: string, spanCount = 3, event: Event = {}): Buffer {
  return serialize(createEventEnvelope(transactionEvent(spanCount, event), makeDsn(dsn), SDK, TUNNEL));
}

export function transactionEvent(spanCount: number, event: Event = {}): Event {
  const traceId = '0123456789abcdef0123456789abcdef';
  const spans = Array.from({ length: spanCount }, (_, i) => ({
    span_id: (0x1000_0000_0000_0000n + BigInt(i)).toString(16),
    parent_span_id: 'abcdef0123456789',
    trace_id: traceId,
    op: 'http.client',
    description: `GET https://api.example.com/v1/items/${i}?include=prices`,
    start_timestamp: 1_700_000_000.123 + i,
    timestamp: 1_700_000_000.456 + i,
    status: 'ok',
    origin: 'auto.http.browser',
    data: { 'http.method': 'GET', url: `https://api.example.com/v1/items/${i}`, 'http.response.status_code': 200 },
  }));
  return {
    type: 'transaction',
    event_id: eventId(),
    transaction: '/checkout',
    platform: 'javascript',
    environment: 'production',
    release: 'web@1.4.2',
    start_timestamp: 1_700_000_000,
    timestamp: 1_700_000_100,
    contexts: { trace: { trace_id: traceId, span_id: 'abcdef0123456789', op: 'pageload' } },
    spans,
    measurements: { lcp: { value: 1234.5, unit: 'millisecond' } },
    request: { url: 'https://app.example.com/checkout', headers: { 'User-Agent': 'Mozilla/5.0 (Macintosh) Safari/605.1.15' } },
    ...event,
  } as Event;
}

export function sdkSessionEnvelope(dsn: string): Buffer {
  const session = makeSession({ release: 'web@1.4.2', environment: 'production' });
  return serialize(createSessionEnvelope(session, makeDsn(dsn), SDK, TUNNEL));
}

/** An error event plus a binary attachment (every byte value, newlines included). */
export function sdkAttachmentEnvelope(dsn: string, data: Uint8Array = allByteValues()): Buffer {
  const base = createEventEnvelope({ event_id: eventId(), message: 'with attachment', level: 'error' }, makeDsn(dsn), SDK, TUNNEL);
  const attachment = createAttachmentEnvelopeItem({ filename: 'dump.bin', data, contentType: 'application/octet-stream' });
  return serialize(createEnvelope(base[0], [...base[1], attachment] as Envelope[1]) as Envelope);
}

/** A Session Replay segment: replay_event plus a replay_recording whose payload is deflate-compressed binary. */
export function sdkReplayEnvelope(dsn: string): { bytes: Buffer; recording: Buffer } {
  const replayId = eventId();
  const rrweb = JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ type: 3, timestamp: 1_700_000_000_000 + i, data: { source: 1, positions: [{ x: i, y: 2 * i }] } })));
  const recording = Buffer.concat([Buffer.from('{"segment_id":0}\n'), deflateSync(rrweb)]);
  const envelope = createEnvelope({ event_id: replayId, sent_at: new Date(1_700_000_000_000).toISOString(), sdk: SDK.sdk, dsn }, [
    [{ type: 'replay_event' }, { type: 'replay_event', replay_id: replayId, segment_id: 0, replay_type: 'session', timestamp: 1_700_000_000 }],
    [{ type: 'replay_recording', length: recording.length }, recording],
  ] as never) as Envelope;
  return { bytes: serialize(envelope), recording };
}

export function sdkClientReportEnvelope(dsn: string): Buffer {
  return serialize(createClientReportEnvelope([{ reason: 'ratelimit_backoff', category: 'error', quantity: 2 }], dsn, 1_700_000_000));
}

/** An error event and a replay recording in one envelope, as the SDK sends them when replay-on-error triggers. */
export function sdkErrorWithReplayEnvelope(dsn: string): { bytes: Buffer; recording: Buffer; recordingItem: Buffer } {
  const replay = sdkReplayEnvelope(dsn);
  const error = sdkErrorEnvelope(dsn);
  const firstNewline = replay.bytes.indexOf(0x0a);
  const items = replay.bytes.subarray(firstNewline + 1);
  const recordingStart = items.indexOf('{"type":"replay_recording"');
  // The SDK writes no newline after the last payload, so one goes between the two item lists.
  return { bytes: Buffer.concat([error, Buffer.from('\n'), items]), recording: replay.recording, recordingItem: items.subarray(recordingStart) };
}
