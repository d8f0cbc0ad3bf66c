// Hints read off the schema: did-you-mean, keys in the wrong section, option descriptions.
import { describe, expect, it } from 'vitest';
import { closest, descriptionAt, invalidValueHint, keysAt, unknownKeyHint } from '../../src/config/hints.js';
import { isLoopbackHost } from '../../src/config/warnings.js';

describe('closest', () => {
  it('finds typos, case slips and shortened words', () => {
    expect(closest('maxEnvelopeByte', ['maxEnvelopeBytes', 'maxDecodedBytes'])).toBe('maxEnvelopeBytes');
    expect(closest('trustproxy', ['host', 'trustProxy'])).toBe('trustProxy');
    expect(closest('orgins', ['origins'])).toBe('origins');
    expect(closest('warning', ['warn', 'error'])).toBe('warn');
  });

  it('suggests nothing when nothing is close', () => {
    expect(closest('banana', ['host', 'port', 'path'])).toBeUndefined();
    expect(closest('p', ['port', 'path'])).toBeUndefined();
  });
});

describe('schema lookups', () => {
  it('knows the keys of a section and of a project', () => {
    expect(keysAt(['limits'])).toEqual(['maxEnvelopeBytes', 'maxDecodedBytes', 'maxHeaderLineBytes']);
    expect(keysAt(['projects', 'web'])).toEqual(['dsn', 'rateLimit']);
    expect(keysAt(['nope'])).toEqual([]);
  });

  it('finds an option description through defaults and wrappers', () => {
    expect(descriptionAt(['upstream', 'timeoutMs'])).toContain('Sentry must answer within this time');
    expect(descriptionAt(['projects', 'web', 'dsn'])).toContain('Sentry.init({ dsn })');
  });

  it('points a key in the wrong section to the right one, else lists the known keys', () => {
    expect(unknownKeyHint('timeoutMs', [])).toBe('"timeoutMs" belongs under "upstream": did you mean "upstream.timeoutMs"?');
    expect(unknownKeyHint('dsn', [])).toContain('DSNs go under "projects"');
    expect(unknownKeyHint('zzz', ['log'])).toBe('known keys here: level, format, requests, summaryIntervalMs');
  });

  it('suggests the closest allowed value', () => {
    expect(invalidValueHint('debgu', ['info', 'debug'])).toBe('did you mean "debug"?');
    expect(invalidValueHint(42, ['info'])).toBeUndefined();
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['localhost', true],
    ['127.0.0.2', true],
    ['::1', true],
    ['[::1]', true],
    ['sentry.localhost', true],
    ['10.0.0.1', false],
    ['sentry.example.com', false],
    ['127.example.com', false],
  ])('%s → %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});
