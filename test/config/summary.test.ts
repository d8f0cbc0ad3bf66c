// check-config's summary never shows secrets, whatever section they are in.
import { describe, expect, it } from 'vitest';
import { redact, summarizeConfig } from '../../src/config/summary.js';
import { validateConfig } from '../../src/config/load.js';

describe('redact', () => {
  it('shortens DSN keys, hides URL passwords and secret-named fields, keeps the rest', () => {
    expect(
      redact({
        selfMonitoring: { dsn: 'https://0123456789abcdef@o1.ingest.sentry.io/5' },
        rateLimit: { redis: 'redis://user:hunter2@127.0.0.1:6379/0', password: 'hunter2', keyPrefix: 'st:' },
        list: ['redis://:hunter2@10.0.0.1:6379', 'plain'],
        n: 3,
      }),
    ).toEqual({
      selfMonitoring: { dsn: 'https://0123…@o1.ingest.sentry.io/5' },
      rateLimit: { redis: 'redis://user:REDACTED@127.0.0.1:6379/0', password: 'REDACTED', keyPrefix: 'st:' },
      list: ['redis://:REDACTED@10.0.0.1:6379', 'plain'],
      n: 3,
    });
  });
});

describe('summarizeConfig', () => {
  it('brackets an IPv6 listen address and puts every section but projects under settings', () => {
    const config = validateConfig({ server: { host: '::', port: 9000 }, projects: { web: { dsn: 'https://abcd1234@o1.ingest.sentry.io/2' } } });
    const summary = summarizeConfig(config, undefined);
    expect(summary.file).toBeNull();
    expect(summary.listen.url).toBe('http://[::]:9000/tunnel');
    expect(Object.keys(summary.settings)).toEqual(expect.arrayContaining(['server', 'cors', 'limits', 'upstream', 'log', 'spool', 'metrics']));
    expect(Object.keys(summary.settings)).not.toContain('projects');
    expect(summary.routes).toContainEqual({ method: 'GET', path: '/metrics', what: 'Prometheus metrics' });
    expect(JSON.stringify(summary)).not.toContain('abcd1234');
  });
});
