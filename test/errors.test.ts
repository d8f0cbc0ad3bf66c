// The error catalogue is public API: codes are unique snake_case, statuses are HTTP errors.
import { describe, expect, it } from 'vitest';
import { ERRORS, TunnelError, errorBody } from '../src/errors.js';

describe('the error catalogue', () => {
  it('has unique snake_case codes with 4xx/5xx statuses and a sentence each', () => {
    const codes = Object.keys(ERRORS);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [code, entry] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThan(600);
      expect(entry.message).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('renders the JSON body {error, code} and keeps the cause', () => {
    const cause = new Error('ECONNREFUSED');
    const error = new TunnelError('upstream_unavailable', { cause });
    expect(error.status).toBe(502);
    expect(error.cause).toBe(cause);
    expect(JSON.parse(errorBody(error))).toEqual({ error: ERRORS.upstream_unavailable.message, code: 'upstream_unavailable' });
  });
});
