// The Sentry envelope format, parsed length-aware and kept byte-exact.
// Spec: https://develop.sentry.dev/sdk/data-model/envelopes/ — reference: Relay's envelope.rs.
// Every part keeps the bytes it was parsed from, so serialising an untouched envelope (or an untouched
// item of a changed one) gives back exactly what arrived. Unknown item types and header fields pass
// through as they are.
import { Buffer } from 'node:buffer';
import { TunnelError } from '../errors.js';

const NEWLINE = 0x0a;

export type Headers = Readonly<Record<string, unknown>>;

export interface EnvelopeItem {
  readonly header: Headers;
  readonly type: string;
  readonly payload: Buffer;
  /** The item's original bytes: header line, newline, payload and the newline after it, if any. */
  readonly raw: Buffer | undefined;
  /** A new payload kept as the pieces it was edited from, so serialising copies it only once. */
  readonly pieces?: readonly Buffer[];
}

export interface Envelope {
  readonly header: Headers;
  /** The header line and its newline as they arrived (undefined once the header was changed). */
  readonly rawHeader: Buffer | undefined;
  readonly items: readonly EnvelopeItem[];
  /** Blank lines after the last item, kept for byte-identity. */
  readonly trailer: Buffer;
}

export function parseEnvelope(bytes: Buffer): Envelope {
  const headerEnd = lineEnd(bytes, 0);
  const header = parseJsonObject(bytes.subarray(0, headerEnd), 'the envelope header');
  let offset = Math.min(headerEnd + 1, bytes.length);
  const rawHeader = bytes.subarray(0, offset);
  const items: EnvelopeItem[] = [];
  let start = offset;

  while (offset < bytes.length) {
    const itemHeaderEnd = lineEnd(bytes, offset);
    const line = bytes.subarray(offset, itemHeaderEnd);
    if (isBlank(line)) {
      // Blank lines between items carry nothing; Relay's JSON reader skips them as whitespace too.
      // Their bytes stay with the next item (or the trailer), so serialising keeps them.
      offset = itemHeaderEnd + 1;
      continue;
    }
    const itemHeader = parseJsonObject(line, `the header of item ${items.length + 1}`);
    const payloadStart = Math.min(itemHeaderEnd + 1, bytes.length);
    const length = itemHeader.length;
    let payloadEnd: number;
    if (length === undefined || length === null) {
      payloadEnd = lineEnd(bytes, payloadStart);
    } else {
      if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
        throw malformed(`item ${items.length + 1} has an invalid "length"`);
      }
      payloadEnd = payloadStart + length;
      if (payloadEnd > bytes.length) throw malformed(`item ${items.length + 1} "length" runs past the end of the envelope`);
      if (payloadEnd < bytes.length && bytes[payloadEnd] !== NEWLINE) {
        throw malformed(`item ${items.length + 1} payload is not followed by a newline`);
      }
    }
    offset = Math.min(payloadEnd + 1, bytes.length);
    items.push({
      header: itemHeader,
      type: typeof itemHeader.type === 'string' ? itemHeader.type : '',
      payload: bytes.subarray(payloadStart, payloadEnd),
      raw: bytes.subarray(start, offset),
    });
    start = offset;
  }
  return { header, rawHeader, items, trailer: bytes.subarray(start) };
}

/** Untouched parts are written from their original bytes; changed ones get fresh JSON and an explicit length. */
export function serializeEnvelope(envelope: Envelope): Buffer {
  const parts: Buffer[] = [envelope.rawHeader ?? Buffer.from(`${JSON.stringify(envelope.header)}\n`)];
  for (const item of envelope.items) {
    if (item.raw) parts.push(item.raw);
    else {
      const pieces = item.pieces ?? [item.payload];
      let length = 0;
      for (const piece of pieces) length += piece.length;
      const header = { ...item.header, length };
      parts.push(Buffer.from(`${JSON.stringify(header)}\n`), ...pieces, Buffer.from('\n'));
    }
  }
  parts.push(envelope.trailer);
  return Buffer.concat(parts);
}

/**
 * A new item (or a changed copy of one): it has no original bytes and is serialised afresh. The payload
 * may be given as pieces (an edited payload around its unchanged parts); they are joined only if read.
 */
export function createItem(header: Headers, payload: Buffer | readonly Buffer[]): EnvelopeItem {
  const type = typeof header.type === 'string' ? header.type : '';
  if (Buffer.isBuffer(payload)) return { header, type, payload, raw: undefined };
  let joined: Buffer | undefined;
  return {
    header,
    type,
    raw: undefined,
    pieces: payload,
    get payload() {
      joined ??= Buffer.concat(payload);
      return joined;
    },
  };
}

/** Items with JSON payloads (event, transaction, …) parsed on demand. */
export function parseItemJson(item: EnvelopeItem): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(item.payload.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The event id Sentry would answer with: the header's event_id as 32 lower-case hex digits. */
export function envelopeEventId(header: Headers): string | undefined {
  const id = header.event_id;
  if (typeof id !== 'string') return undefined;
  const simple = id.replaceAll('-', '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(simple) ? simple : undefined;
}

function isBlank(line: Buffer): boolean {
  for (const byte of line) {
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  }
  return true;
}

function lineEnd(bytes: Buffer, from: number): number {
  const index = bytes.indexOf(NEWLINE, from);
  return index === -1 ? bytes.length : index;
}

function parseJsonObject(line: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    throw malformed(`${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function malformed(detail: string): TunnelError {
  return new TunnelError('malformed_envelope', { message: `Malformed envelope: ${detail}.` });
}
