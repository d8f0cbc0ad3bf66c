// Configuration: every source, every precedence rule, every problem listed with its path, frozen.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const DSN = 'https://abc123@o1.ingest.sentry.io/2';

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sentry-tunnel-config-'));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

async function problemsOf(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('loadConfig', () => {
  it('finds sentry-tunnel.config.json, applies defaults and freezes the result', async () => {
    const dir = await dirWith({ 'sentry-tunnel.config.json': JSON.stringify({ projects: { web: { dsn: DSN } } }) });
    const { config, file } = await loadConfig({}, {}, dir);
    expect(file).toBe(join(dir, 'sentry-tunnel.config.json'));
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8080, path: '/tunnel', trustProxy: false });
    expect(config.limits.maxEnvelopeBytes).toBe(20 * 1024 * 1024);
    expect(config.cors.origins).toBe('*');
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow();
  });

  it('reads the "sentry-tunnel" key of package.json and .sentry-tunnelrc', async () => {
    const fromPackage = await dirWith({ 'package.json': JSON.stringify({ name: 'x', 'sentry-tunnel': { projects: { a: { dsn: DSN } } } }) });
    expect(Object.keys((await loadConfig({}, {}, fromPackage)).config.projects)).toEqual(['a']);
    const fromRc = await dirWith({ '.sentry-tunnelrc': 'projects:\n  b:\n    dsn: https://abc123@o1.ingest.sentry.io/2\n' });
    expect(Object.keys((await loadConfig({}, {}, fromRc)).config.projects)).toEqual(['b']);
  });

  it('lists every problem with its path', async () => {
    const dir = await dirWith({
      'bad.json': JSON.stringify({
        server: { port: 70000, path: 'tunnel', trustProxy: ['not-a-cidr'] },
        projects: { web: { dsn: 'https://o1.ingest.sentry.io/2' }, 'bad name': { dsn: DSN } },
        limits: { maxEnvelopeByte: 5 },
        cors: { origins: 'sometimes' },
        extra: true,
      }),
    });
    const error = await problemsOf(loadConfig({ config: 'bad.json' }, {}, dir));
    expect(error.kind).toBe('invalid');
    const byPath = Object.fromEntries(error.problems.map((problem) => [problem.path, problem.message]));
    expect(byPath['server.port']).toBe('port must be 1–65535');
    expect(byPath['server.path']).toMatch(/must start with "\/"/);
    expect(byPath['server.trustProxy.0']).toMatch(/not a CIDR/);
    expect(byPath['projects.web.dsn']).toBe('not a valid DSN: missing public key');
    expect(byPath['projects.bad name']).toMatch(/letters, digits/);
    expect(byPath['limits.maxEnvelopeByte']).toBe('unknown key "maxEnvelopeByte"');
    expect(byPath['cors.origins']).toBeDefined();
    expect(byPath.extra).toBe('unknown key "extra"');
    expect(error.message).toContain('projects.web.dsn: not a valid DSN: missing public key');
  });

  it('reports a duplicate DSN', async () => {
    const dir = await dirWith({ 'c.json': JSON.stringify({ projects: { web: { dsn: DSN }, copy: { dsn: DSN.replace('o1.', 'O1.') } } }) });
    const error = await problemsOf(loadConfig({ config: 'c.json' }, {}, dir));
    expect(error.problems).toEqual([
      { path: 'projects.copy.dsn', message: 'duplicate DSN also used by project "web"', hint: 'a DSN can belong to one project only: remove one of them' },
    ]);
  });

  it('requires at least one project', async () => {
    const dir = await dirWith({ 'c.json': JSON.stringify({ projects: {} }) });
    const error = await problemsOf(loadConfig({ config: 'c.json' }, {}, dir));
    expect(error.problems).toEqual([
      { path: 'projects', message: 'at least one project is required', hint: expect.stringContaining('add "projects": { "web": { "dsn":') },
    ]);
  });

  it('says where it looked when there is no configuration at all', async () => {
    const dir = await dirWith({});
    const error = await problemsOf(loadConfig({}, {}, dir));
    expect(error.kind).toBe('not_found');
    expect(error.message).toContain(dir);
    expect(error.message).toContain('sentry-tunnel.config.json');
    const missing = await problemsOf(loadConfig({ config: 'nope.json' }, {}, dir));
    expect(missing.kind).toBe('not_found');
  });

  it('needs no file when DSNs come from flags or the environment', async () => {
    const dir = await dirWith({});
    const fromFlag = await loadConfig({ dsn: [DSN] }, {}, dir);
    expect(fromFlag.file).toBeUndefined();
    expect(fromFlag.config.projects).toEqual({ '2': { dsn: DSN } });
    const fromEnv = await loadConfig({}, { SENTRY_ALLOWED_DSNS: `${DSN}, https://def@o1.ingest.sentry.io/3` }, dir);
    expect(Object.keys(fromEnv.config.projects)).toEqual(['2', '3']);
  });

  it('layers flags over environment over file over defaults', async () => {
    const dir = await dirWith({
      'sentry-tunnel.config.json': JSON.stringify({ server: { host: '0.0.0.0', port: 1000 }, projects: { web: { dsn: DSN } }, log: { level: 'warn' } }),
    });
    const env = { SENTRY_TUNNEL_PORT: '2000', SENTRY_TUNNEL_HOST: '::1', SENTRY_TUNNEL_LOG_LEVEL: 'debug', TUNNEL_TIMEOUT: '1234' };
    const { config } = await loadConfig({ port: '3000', logLevel: 'error', pretty: true }, env, dir);
    expect(config.server.port).toBe(3000);
    expect(config.server.host).toBe('::1');
    expect(config.log).toMatchObject({ level: 'error', format: 'pretty' });
    expect(config.upstream.timeoutMs).toBe(1234);
    expect(config.projects.web?.dsn).toBe(DSN);
  });

  it('does not add a --dsn project twice when the file already has that DSN', async () => {
    const dir = await dirWith({ 'sentry-tunnel.config.json': JSON.stringify({ projects: { web: { dsn: DSN } } }) });
    const { config } = await loadConfig({ dsn: [DSN, 'https://zzz@o1.ingest.sentry.io/2'] }, {}, dir);
    expect(config.projects).toEqual({ web: { dsn: DSN }, '2': { dsn: 'https://zzz@o1.ingest.sentry.io/2' } });
  });

  it('reports an invalid port from the environment at its path', async () => {
    const dir = await dirWith({});
    const error = await problemsOf(loadConfig({ dsn: [DSN] }, { SENTRY_TUNNEL_PORT: 'eighty' }, dir));
    expect(error.problems.map((problem) => problem.path)).toEqual(['server.port']);
  });

  it('interpolates ${VAR} and reports unset variables at their path', async () => {
    const dir = await dirWith({
      'c.json': JSON.stringify({ projects: { web: { dsn: '${WEB_DSN}' }, api: { dsn: '${API_DSN}' } }, server: { host: '${HOST:-127.0.0.2}' } }),
    });
    const { config } = await loadConfig({ config: 'c.json' }, { WEB_DSN: DSN, API_DSN: 'https://k@o1.ingest.sentry.io/3' }, dir);
    expect(config.projects.web?.dsn).toBe(DSN);
    expect(config.server.host).toBe('127.0.0.2');
    const error = await problemsOf(loadConfig({ config: 'c.json' }, { WEB_DSN: DSN }, dir));
    expect(error.problems[0]).toMatchObject({ path: 'projects.api.dsn', message: 'environment variable API_DSN is not set' });
  });

  it('reports a file that is not valid JSON', async () => {
    const dir = await dirWith({ 'c.json': '{ "projects": ' });
    const error = await problemsOf(loadConfig({ config: 'c.json' }, {}, dir));
    expect(error.kind).toBe('unreadable');
  });
});
