// The pure parts of send-test's diagnosis: rate-limit headers and telling the tunnel's answers from Sentry's.
import { describe, expect, it } from 'vitest';
import { type DiagnosisContext, diagnoseAnswer, parseRateLimits, parseRetryAfter, sentryError, tunnelCode } from '../../src/daemon/send-test-diagnosis.js';

describe('parseRateLimits', () => {
  it('reads every limit, longest first, with categories, scope and reason', () => {
    expect(parseRateLimits('60:error;transaction:organization:usage_exceeded, 2700:default:project, garbage')).toEqual([
      { seconds: 2700, categories: ['default'], scope: 'project', reason: undefined },
      { seconds: 60, categories: ['error', 'transaction'], scope: 'organization', reason: 'usage_exceeded' },
    ]);
    expect(parseRateLimits('30::key')).toEqual([{ seconds: 30, categories: [], scope: 'key', reason: undefined }]);
    expect(parseRateLimits(undefined)).toEqual([]);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120')).toBe(120);
    const seconds = parseRetryAfter(new Date(Date.now() + 90_000).toUTCString()) ?? 0;
    expect(seconds).toBeGreaterThan(80);
    expect(seconds).toBeLessThanOrEqual(90);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('who answered', () => {
  const tunnelAnswer = { status: 403, headers: {}, body: '{"error":"The envelope DSN is not one of the projects this tunnel forwards to.","code":"dsn_not_allowed"}' };
  const sentryAnswer = { status: 403, headers: { 'x-sentry-error': 'bad key' }, body: '{"detail":"event submission rejected"}' };

  it('the tunnel writes {error, code}; only when sending via the tunnel does that count', () => {
    expect(tunnelCode(tunnelAnswer, 'tunnel')).toBe('dsn_not_allowed');
    expect(tunnelCode(tunnelAnswer, 'direct')).toBeUndefined();
    expect(tunnelCode(sentryAnswer, 'tunnel')).toBeUndefined();
    expect(tunnelCode({ status: 502, headers: {}, body: '<html>' }, 'tunnel')).toBeUndefined();
  });

  it('Sentry says why in X-Sentry-Error, else in the JSON detail', () => {
    expect(sentryError(sentryAnswer)).toBe('bad key');
    expect(sentryError({ ...sentryAnswer, headers: {} })).toBe('event submission rejected');
    expect(sentryError({ status: 403, headers: {}, body: '' })).toBeUndefined();
  });
});

describe('diagnoseAnswer', () => {
  const ctx: DiagnosisContext = {
    via: 'tunnel',
    url: new URL('http://127.0.0.1:8080/tunnel'),
    sentryHost: 'o1.ingest.sentry.io',
    project: 'web',
    origin: undefined,
    configuredPath: '/tunnel',
    configArg: '',
    envelopeBytes: 500,
    timeoutMs: 15_000,
  };

  it('a full spool means Sentry is unreachable: fix the way there first', () => {
    const diagnosis = diagnoseAnswer({ status: 503, headers: {}, body: '{"error":"…","code":"spool_full"}' }, ctx);
    expect(diagnosis?.cause).toBe('sentry_unreachable');
    expect(diagnosis?.problem).toContain('cannot reach Sentry at o1.ingest.sentry.io, and its spool cannot keep more (spool_full)');
    expect(diagnosis?.fix).toContain('raise spool.maxBytes');
  });

  it('a 200 with Sentry\'s {"id"} is no problem at all', () => {
    expect(diagnoseAnswer({ status: 200, headers: {}, body: '{"id":"abc"}' }, ctx)).toBeUndefined();
  });
});
