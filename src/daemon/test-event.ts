// The event send-test sends, built with @sentry/core's own envelope and DSN helpers so the bytes are
// exactly what a Sentry SDK posts. @sentry/core is imported here only: it costs ~150 ms to load,
// which no other command should pay.
import { Buffer } from 'node:buffer';
import { version } from '../version.js';

export const TEST_TAG = 'sentry_tunnel.test';
export const SDK_INFO = { name: 'sentry-tunnel.send-test', version } as const;

export interface TestEnvelope {
  readonly eventId: string;
  /** The serialised envelope, as the SDK's fetch transport posts it. */
  readonly body: string;
  /** Sentry's ingest URL for the DSN, with the key in the query, as the SDK builds it without a tunnel. */
  readonly directUrl: string;
}

export interface TestEnvelopeOptions {
  readonly dsn: string;
  readonly message: string;
}

/** Builds the envelope; undefined when @sentry/core does not accept the DSN. */
export async function buildTestEnvelope(options: TestEnvelopeOptions): Promise<TestEnvelope | undefined> {
  const sentry = await import('@sentry/core');
  const dsn = sentry.makeDsn(options.dsn);
  if (!dsn) return undefined;
  const eventId = sentry.uuid4();
  const event = {
    event_id: eventId,
    message: options.message,
    level: 'info' as const,
    platform: 'javascript',
    timestamp: Date.now() / 1000,
    tags: { [TEST_TAG]: 'true' },
  };
  // An SDK with `tunnel` set writes the DSN into the envelope header (that is how the tunnel finds the
  // project). --direct sends the same bytes, so the two results compare.
  const envelope = sentry.createEventEnvelope(event, dsn, { sdk: { ...SDK_INFO } }, 'tunnel');
  const serialized = sentry.serializeEnvelope(envelope);
  return {
    eventId,
    body: typeof serialized === 'string' ? serialized : Buffer.from(serialized).toString('utf8'),
    directUrl: sentry.getEnvelopeEndpointWithUrlEncodedAuth(dsn, undefined, SDK_INFO),
  };
}
