// Envelopes as SDKs build them, for tests: https://develop.sentry.dev/sdk/data-model/envelopes/
import { randomBytes } from 'node:crypto';

export function eventId(): string {
  return randomBytes(16).toString('hex');
}

export interface ItemSpec {
  readonly type: string;
  readonly payload: Buffer | string | object;
  /** Write an explicit `length` header (binary-safe items must). */
  readonly withLength?: boolean;
  readonly headers?: Record<string, unknown>;
}

export function envelope(header: Record<string, unknown>, items: readonly ItemSpec[] = []): Buffer {
  const parts: Buffer[] = [Buffer.from(`${JSON.stringify(header)}\n`)];
  for (const item of items) {
    const payload = Buffer.isBuffer(item.payload)
      ? item.payload
      : Buffer.from(typeof item.payload === 'string' ? item.payload : JSON.stringify(item.payload));
    const itemHeader = { type: item.type, ...(item.withLength ? { length: payload.length } : {}), ...item.headers };
    parts.push(Buffer.from(`${JSON.stringify(itemHeader)}\n`), payload, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** A browser error event envelope for `dsn`. */
export function errorEnvelope(dsn: string, message = 'Something broke'): Buffer {
  const id = eventId();
  return envelope({ event_id: id, sent_at: new Date().toISOString(), dsn, sdk: { name: 'sentry.javascript.browser', version: '10.0.0' } }, [
    { type: 'event', payload: { event_id: id, message, level: 'error', platform: 'javascript', timestamp: Date.now() / 1000 } },
  ]);
}

/** Every byte value 0–255, several times: what a binary Session Replay or attachment item looks like to a text parser. */
export function allByteValues(repeat = 4): Buffer {
  const bytes = Buffer.alloc(256 * repeat);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
  return bytes;
}
