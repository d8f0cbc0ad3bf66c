// The envelope parser/serialiser as a unit: byte identity on SDK-built envelopes, the spec's edge
// cases, and every malformed shape rejected with malformed_envelope.
import { describe, expect, it } from 'vitest';
import { createItem, envelopeEventId, parseEnvelope, serializeEnvelope } from '../../src/core/envelope.js';
import { TunnelError } from '../../src/errors.js';
import { allByteValues } from '../helpers/envelopes.js';
import {
  sdkAttachmentEnvelope,
  sdkClientReportEnvelope,
  sdkErrorEnvelope,
  sdkReplayEnvelope,
  sdkSessionEnvelope,
  sdkTransactionEnvelope,
} from '../helpers/sdk-envelopes.js';

const DSN = 'https://abc123def456@o1.ingest.sentry.io/2';

describe('parse → serialise is byte-identical on SDK envelopes', () => {
  const replay = sdkReplayEnvelope(DSN);
  const cases: [string, Buffer, string[]][] = [
    ['error', sdkErrorEnvelope(DSN), ['event']],
    ['transaction', sdkTransactionEnvelope(DSN, 60), ['transaction']],
    ['session', sdkSessionEnvelope(DSN), ['session']],
    ['attachment with every byte value', sdkAttachmentEnvelope(DSN), ['event', 'attachment']],
    ['replay with a compressed binary recording', replay.bytes, ['replay_event', 'replay_recording']],
    ['client report', sdkClientReportEnvelope(DSN), ['client_report']],
  ];
  it.each(cases)('%s', (_name, bytes, types) => {
    const envelope = parseEnvelope(bytes);
    expect(envelope.items.map((item) => item.type)).toEqual(types);
    expect(serializeEnvelope(envelope).equals(bytes)).toBe(true);
  });

  it('reads binary payloads by their length, newlines and all', () => {
    const attachment = parseEnvelope(sdkAttachmentEnvelope(DSN)).items[1];
    expect(attachment?.payload.equals(allByteValues())).toBe(true);
    const recording = parseEnvelope(replay.bytes).items[1];
    expect(recording?.payload.equals(replay.recording)).toBe(true);
  });
});

const HEADER = '{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://abc123def456@o1.ingest.sentry.io/2"}';

describe('edge cases of the format', () => {
  const cases: { name: string; body: string; payloads: string[]; types?: string[] }[] = [
    { name: 'header only, with newline', body: `${HEADER}\n`, payloads: [] },
    { name: 'header only, without newline', body: HEADER, payloads: [] },
    { name: 'implicit length', body: `${HEADER}\n{"type":"event"}\n{"message":"hi"}\n`, payloads: ['{"message":"hi"}'] },
    { name: 'implicit length, no final newline', body: `${HEADER}\n{"type":"event"}\n{"message":"hi"}`, payloads: ['{"message":"hi"}'] },
    { name: 'implicit length, empty payload', body: `${HEADER}\n{"type":"attachment"}\n\n`, payloads: [''] },
    { name: 'implicit length, empty payload at the end', body: `${HEADER}\n{"type":"attachment"}`, payloads: [''] },
    { name: 'length 0', body: `${HEADER}\n{"type":"attachment","length":0}\n\n{"type":"attachment","length":0}\n`, payloads: ['', ''] },
    { name: 'length 0 at the end, no final newline', body: `${HEADER}\n{"type":"attachment","length":0}`, payloads: [''] },
    { name: 'length 0 after a header with its newline', body: `${HEADER}\n{"type":"attachment","length":0}\n`, payloads: [''] },
    { name: 'explicit length containing newlines', body: `${HEADER}\n{"type":"attachment","length":6}\na\nb\r\nc\n`, payloads: ['a\nb\r\nc'] },
    { name: 'explicit length, no final newline', body: `${HEADER}\n{"type":"attachment","length":3}\nabc`, payloads: ['abc'] },
    { name: 'length null reads to the newline', body: `${HEADER}\n{"type":"event","length":null}\n{}\n`, payloads: ['{}'] },
    { name: '\\r\\n line endings: \\r belongs to the payload', body: `${HEADER}\r\n{"type":"event"}\r\n{"message":"hi"}\r\n`, payloads: ['{"message":"hi"}\r'] },
    { name: 'blank lines between items are skipped', body: `${HEADER}\n\n{"type":"event"}\n{}\n\n \r\n{"type":"session"}\n{}\n\n`, payloads: ['{}', '{}'] },
    {
      name: 'unknown item types and header fields are kept',
      body: `${HEADER}\n{"type":"future_thing","length":2,"x-custom":{"a":[1]}}\nok\n`,
      payloads: ['ok'],
      types: ['future_thing'],
    },
    { name: 'an item header without type', body: `${HEADER}\n{"length":2}\nok\n`, payloads: ['ok'], types: [''] },
  ];

  it.each(cases)('$name', ({ body, payloads, types }) => {
    const bytes = Buffer.from(body);
    const envelope = parseEnvelope(bytes);
    expect(envelope.items.map((item) => item.payload.toString())).toEqual(payloads);
    if (types) expect(envelope.items.map((item) => item.type)).toEqual(types);
    expect(serializeEnvelope(envelope).toString()).toBe(body);
  });

  it('keeps unknown envelope header fields', () => {
    const envelope = parseEnvelope(Buffer.from(`{"dsn":"x","x-future":{"n":1}}\n`));
    expect(envelope.header['x-future']).toEqual({ n: 1 });
  });
});

describe('malformed envelopes are rejected with malformed_envelope', () => {
  const cases: [string, string][] = [
    ['envelope header is not JSON', `{"dsn":\n{"type":"event"}\n{}\n`],
    ['envelope header is a JSON array', `["dsn"]\n`],
    ['item header is not JSON', `${HEADER}\n{"type":"event"\n{}\n`],
    ['item header is a JSON string', `${HEADER}\n"event"\n{}\n`],
    ['length runs past the end', `${HEADER}\n{"type":"attachment","length":10}\nabc\n`],
    ['length runs past the end by one', `${HEADER}\n{"type":"attachment","length":4}\nabc`],
    ['payload not followed by a newline', `${HEADER}\n{"type":"attachment","length":2}\nabc\n`],
    ['explicit length in a \\r\\n envelope', `${HEADER}\n{"type":"attachment","length":3}\r\nabc\r\n`],
    ['negative length', `${HEADER}\n{"type":"attachment","length":-1}\nabc\n`],
    ['fractional length', `${HEADER}\n{"type":"attachment","length":1.5}\nabc\n`],
    ['string length', `${HEADER}\n{"type":"attachment","length":"3"}\nabc\n`],
    ['second item header broken after a good item', `${HEADER}\n{"type":"event"}\n{}\n{oops}\n`],
  ];
  it.each(cases)('%s', (_name, body) => {
    let caught: unknown;
    try {
      parseEnvelope(Buffer.from(body));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TunnelError);
    expect((caught as TunnelError).code).toBe('malformed_envelope');
    expect((caught as TunnelError).status).toBe(400);
  });
});

describe('serialising a changed envelope', () => {
  it('rewrites only the changed item, with a new length; the others keep their bytes', () => {
    const bytes = sdkAttachmentEnvelope(DSN);
    const envelope = parseEnvelope(bytes);
    const [event, attachment] = envelope.items;
    if (!event || !attachment?.raw) throw new Error('fixture');
    const changed = createItem(event.header, Buffer.from('{"message":"changed\\nline"}'));
    const out = serializeEnvelope({ ...envelope, items: [changed, attachment] });

    const reparsed = parseEnvelope(out);
    expect(reparsed.items[0]?.header).toMatchObject({ type: 'event', length: changed.payload.length });
    expect(reparsed.items[0]?.payload.toString()).toBe('{"message":"changed\\nline"}');
    expect(reparsed.items[1]?.raw?.equals(attachment.raw)).toBe(true);
    expect(out.subarray(0, bytes.indexOf(0x0a) + 1).equals(bytes.subarray(0, bytes.indexOf(0x0a) + 1))).toBe(true);
  });
});

describe('envelopeEventId', () => {
  it.each([
    ['9ec79c33ec9942ab8353589fcb2e04dc', '9ec79c33ec9942ab8353589fcb2e04dc'],
    ['9EC79C33-EC99-42AB-8353-589FCB2E04DC', '9ec79c33ec9942ab8353589fcb2e04dc'],
    ['not-an-id', undefined],
    [42, undefined],
  ])('%s → %s', (input, expected) => {
    expect(envelopeEventId({ event_id: input })).toBe(expected);
  });
});
