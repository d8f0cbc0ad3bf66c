// Which paths the tunnel takes when server.path is one path or several.
import { describe, expect, it } from 'vitest';
import { canonicalPath, createRouter, tunnelPaths } from '../../src/core/routes.js';

describe('createRouter', () => {
  it('takes each configured path, with or without a trailing slash, and {path}/<name> under each', () => {
    const route = createRouter(['/api/sentry-tunnel', '/log/sentry']);
    expect(route('/api/sentry-tunnel')).toEqual({ tunnelPath: '/api/sentry-tunnel', project: undefined });
    expect(route('/api/sentry-tunnel/')).toEqual({ tunnelPath: '/api/sentry-tunnel', project: undefined });
    expect(route('/log/sentry')).toEqual({ tunnelPath: '/log/sentry', project: undefined });
    expect(route('/log/sentry/web')).toEqual({ tunnelPath: '/log/sentry', project: 'web' });
    expect(route('/api/sentry-tunnel/my%20app')).toEqual({ tunnelPath: '/api/sentry-tunnel', project: 'my app' });
  });

  it('leaves every other path alone', () => {
    const route = createRouter(['/tunnel', '/old']);
    for (const path of ['/', '/tunnelx', '/tunnel/web/', '/tunnel/a/b', '/tunnel//', '/older', '/healthz', '/api']) expect(route(path)).toBeUndefined();
  });

  it('reads a path that is configured itself as that path, not as a project under a shorter one', () => {
    const route = createRouter(['/a', '/a/b']);
    expect(route('/a/b')).toEqual({ tunnelPath: '/a/b', project: undefined });
    expect(route('/a/c')).toEqual({ tunnelPath: '/a', project: 'c' });
    expect(route('/a/b/web')).toEqual({ tunnelPath: '/a/b', project: 'web' });
  });

  it('treats one path and a list of one alike; the first of several is canonical', () => {
    expect(tunnelPaths('/tunnel')).toEqual(['/tunnel']);
    expect(createRouter('/tunnel')('/tunnel/web')).toEqual(createRouter(['/tunnel'])('/tunnel/web'));
    expect(canonicalPath('/tunnel')).toBe('/tunnel');
    expect(canonicalPath(['/api/sentry-tunnel', '/tunnel'])).toBe('/api/sentry-tunnel');
  });
});
