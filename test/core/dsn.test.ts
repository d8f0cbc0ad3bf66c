// DSN parsing agrees with the SDK's own (@sentry/core) and says why a DSN is invalid.
import { dsnFromString, makeDsn } from '@sentry/core';
import { describe, expect, it } from 'vitest';
import { envelopeTarget, normalizeDsn, parseDsn, redactDsn } from '../../src/core/dsn.js';

const VALID = [
  'https://abc123@o1.ingest.sentry.io/2',
  'https://abc123@o4507.ingest.us.sentry.io/4507123',
  'https://abc123@ingest.de.sentry.io/9',
  'http://abc123@sentry.example.com:9000/sentry/5',
  'https://abc123:secret@sentry.example.com/prefix/deeper/42',
  'http://key_1@127.0.0.1:8000/3',
];

describe('parseDsn', () => {
  it.each(VALID)('parses %s like @sentry/core', (input) => {
    const ours = parseDsn(input);
    const sdk = makeDsn(input);
    expect(ours.ok).toBe(true);
    expect(sdk).toBeDefined();
    if (!ours.ok || !sdk) return;
    expect(ours.dsn.protocol).toBe(sdk.protocol);
    expect(ours.dsn.publicKey).toBe(sdk.publicKey);
    expect(ours.dsn.host).toBe(sdk.host);
    expect(ours.dsn.projectId).toBe(sdk.projectId);
    expect(ours.dsn.path).toBe(sdk.path);
    expect(ours.dsn.port).toBe(sdk.port === '443' || sdk.port === '80' ? '' : sdk.port);
  });

  it.each([
    ['', 'expected'],
    ['not a dsn', 'expected'],
    ['ftp://abc@host/1', 'protocol must be http or https'],
    ['https://o1.ingest.sentry.io/2', 'missing public key'],
    ['https://abc@/2', 'missing host'],
    ['https://abc@host:port/2', 'invalid port'],
    ['https://abc@host', 'missing project id'],
    ['https://abc@host/project', 'project id must be a number'],
  ])('rejects %j: %s', (input, reason) => {
    const result = parseDsn(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
    if (input.startsWith('http')) expect(makeDsn(input)).toBeUndefined();
  });

  it('normalises host case, default ports, the secret and slashes to one form', () => {
    const forms = ['https://abc@O1.Ingest.Sentry.IO:443/2', 'https://abc:secret@o1.ingest.sentry.io/2', 'https://abc@o1.ingest.sentry.io//2/'];
    const normal = forms.map((form) => {
      const parsed = parseDsn(form);
      if (!parsed.ok) throw new Error(parsed.reason);
      return normalizeDsn(parsed.dsn);
    });
    expect(new Set(normal)).toEqual(new Set(['https://abc@o1.ingest.sentry.io/2']));
    expect(dsnFromString('https://abc@o1.ingest.sentry.io/2')?.projectId).toBe('2');
  });

  it('builds the envelope endpoint from the DSN, authenticated in the query', () => {
    const parsed = parseDsn('http://key@sentry.example.com:9000/sentry/5');
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(envelopeTarget(parsed.dsn)).toEqual({
      origin: 'http://sentry.example.com:9000',
      path: '/sentry/api/5/envelope/?sentry_version=7&sentry_key=key',
    });
  });

  it('redacts the key for logs', () => {
    const parsed = parseDsn('https://0123456789abcdef@o1.ingest.sentry.io/2');
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(redactDsn(parsed.dsn)).toBe('https://0123…@o1.ingest.sentry.io/2');
  });
});
