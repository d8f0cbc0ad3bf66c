// `sentry-tunnel check-config` run as the real CLI: every problem with its path and hint, warnings,
// --strict, --json, the exit codes, and that it loads exactly as `serve` (files, env, flags) without listening.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runCli, tempDir } from '../helpers/run-cli.js';

const EXAMPLE = `${REPO}/sentry-tunnel.config.example.json`;
const DSN = 'https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/2';
const OTHER_DSN = 'https://fedcba9876543210fedcba9876543210@o1.ingest.sentry.io/3';

let dir: ReturnType<typeof tempDir>;

beforeAll(() => {
  dir = tempDir();
});

afterAll(() => dir.remove());

function check(config: unknown, ...args: string[]) {
  const file = dir.write(`config-${Math.random().toString(36).slice(2)}.json`, config);
  return runCli(['check-config', '--config', file, ...args]);
}

describe('check-config on a broken configuration', () => {
  const cases: [string, unknown, string][] = [
    ['a mistyped key', { projects: { web: { dsn: DSN } }, limits: { maxEnvelopeByte: 1000 } }, 'limits.maxEnvelopeByte: unknown key "maxEnvelopeByte" — did you mean "maxEnvelopeBytes"?'],
    ['a key in the wrong section', { port: 8080, projects: { web: { dsn: DSN } } }, 'port: unknown key "port" — "port" belongs under "server": did you mean "server.port"?'],
    ['a DSN without public key', { projects: { web: { dsn: 'https://o1.ingest.sentry.io/2' } } }, 'projects.web.dsn: not a valid DSN: missing public key — copy it from Sentry: Project Settings → Client Keys (DSN)'],
    ['a DSN used twice', { projects: { web: { dsn: DSN }, api: { dsn: DSN.replace('o1.', 'O1.') } } }, 'projects.api.dsn: duplicate DSN also used by project "web" — a DSN can belong to one project only'],
    ['a port out of range', { server: { port: 70000 }, projects: { web: { dsn: DSN } } }, 'server.port: port must be 1–65535'],
    ['a path without leading slash', { server: { path: 'tunnel' }, projects: { web: { dsn: DSN } } }, 'server.path: path must start with "/"'],
    ['a bad CIDR', { server: { trustProxy: ['10.0.0.0/33'] }, projects: { web: { dsn: DSN } } }, 'server.trustProxy.0: not a CIDR or IP address: "10.0.0.0/33" — write an address or a range'],
    ['trustProxy of the wrong kind', { server: { trustProxy: 'yes' }, projects: { web: { dsn: DSN } } }, 'server.trustProxy: "yes" is not allowed here — false: the peer is the client; true: trust X-Forwarded-For'],
    ['no projects', { projects: {} }, 'projects: at least one project is required — add "projects"'],
    ['an unknown log level', { projects: { web: { dsn: DSN } }, log: { level: 'warning' } }, 'log.level: must be "fatal", "error", "warn", "info", "debug", "trace", "silent", not "warning" — did you mean "warn"?'],
    ['a fraction for a whole number', { server: { port: 80.5 }, projects: { web: { dsn: DSN } } }, 'server.port: must be a whole number, not 80.5'],
    ['a string for a number', { server: { headersTimeoutMs: '10s' }, projects: { web: { dsn: DSN } } }, 'server.headersTimeoutMs: must be a number, not "10s" — A client must send its request headers within this time.'],
    ['decoded limit below wire limit', { projects: { web: { dsn: DSN } }, limits: { maxEnvelopeBytes: 2000, maxDecodedBytes: 1000 } }, 'limits.maxDecodedBytes: must be at least limits.maxEnvelopeBytes (2000)'],
    ['an origin that is not one', { projects: { web: { dsn: DSN } }, cors: { origins: ['app.example.com'] } }, 'cors.origins.0: not an origin such as "https://app.example.com"'],
    ['a list as the whole configuration', [1, 2], '(root): the configuration must be an object'],
  ];

  it.each(cases)('%s: names the path, what is wrong and a hint; exit 1', async (_name, config, expected) => {
    const result = await check(config);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('✘ invalid configuration in');
    expect(result.stdout).toContain(`  ${expected}`);
  });

  it('lists every problem of a configuration at once, cross-field checks included', async () => {
    const result = await check({
      server: { port: 70000, path: 'x' },
      projects: { web: { dsn: 'nope' }, api: { dsn: OTHER_DSN }, again: { dsn: OTHER_DSN } },
      limits: { maxEnvelopeByte: 1 },
      log: { level: 'loud' },
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('— 6 problems:');
    for (const path of ['server.port', 'server.path', 'projects.web.dsn', 'projects.again.dsn', 'limits.maxEnvelopeByte', 'log.level']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${path.replace('.', '\\.')}: `, 'm'));
    }
  });

  it('reports an unset ${VAR} once, at its path, not also as an invalid DSN', async () => {
    const result = await check({ projects: { web: { dsn: '${SENTRY_TUNNEL_TEST_UNSET_DSN}' } } });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('projects.web.dsn: environment variable SENTRY_TUNNEL_TEST_UNSET_DSN is not set');
    expect(result.stdout).not.toContain('not a valid DSN');
  });

  it('reports a file that is not JSON as unreadable; exit 1', async () => {
    const file = dir.write('broken.json', '{ "projects": ');
    const result = await runCli(['check-config', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`✘ cannot read the configuration ${file}:`);
    expect(result.stdout).toContain('JSON Error');
  });
});

describe('check-config when there is no configuration', () => {
  it('says where it looked; exit 2', async () => {
    const empty = tempDir();
    try {
      const result = await runCli(['check-config'], { cwd: empty.path });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`No configuration found. Looked for package.json, .sentry-tunnelrc`);
      expect(result.stderr).toContain(`sentry-tunnel.config.json`);
      expect(result.stderr).toContain(`in ${empty.path}`);
      expect(result.stdout).toBe('');
    } finally {
      empty.remove();
    }
  });

  it('names a --config file that does not exist; exit 2, also with --json', async () => {
    const result = await runCli(['check-config', '--config', `${dir.path}/missing.json`, '--json']);
    expect(result.code).toBe(2);
    const report = JSON.parse(result.stdout) as { valid: boolean; errors: { message: string }[] };
    expect(report.valid).toBe(false);
    expect(report.errors[0]?.message).toBe(`Configuration file not found: ${dir.path}/missing.json`);
  });
});

describe('check-config on a valid configuration', () => {
  it('accepts the shipped example and says what the tunnel would do, key redacted; exit 0', async () => {
    const result = await runCli(['check-config', '--config', EXAMPLE]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`✔ configuration is valid: ${EXAMPLE}`);
    expect(result.stdout).toContain('listen    http://127.0.0.1:8080/tunnel');
    expect(result.stdout).toMatch(/POST \/tunnel {2,}envelopes for any configured project/);
    expect(result.stdout).toContain('GET /healthz');
    expect(result.stdout).toContain('web → https://o1.ingest.sentry.io/api/2/envelope/?sentry_version=7&sentry_key=REDACTED');
    expect(result.stdout).toMatch(/limits\.maxEnvelopeBytes +20971520 \(20 MiB\)/);
    expect(result.stdout).toMatch(/upstream\.timeoutMs +10000 \(10 s\)/);
    expect(result.stdout).toContain('cors.origins');
    expect(result.stdout).not.toContain('0123456789abcdef');
    expect(result.stdout).not.toContain('warning');
  });

  it('--json prints one document with valid, file, errors, warnings and summary', async () => {
    const result = await runCli(['check-config', '--config', EXAMPLE, '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, any>;
    expect(Object.keys(report)).toEqual(['valid', 'file', 'errors', 'warnings', 'summary']);
    expect(report.valid).toBe(true);
    expect(report.file).toBe(EXAMPLE);
    expect(report.errors).toEqual([]);
    expect(report.summary.listen).toEqual({ host: '127.0.0.1', port: 8080, paths: ['/tunnel'], path: '/tunnel', url: 'http://127.0.0.1:8080/tunnel' });
    expect(report.summary.projects).toEqual([
      {
        name: 'web',
        dsn: 'https://0123…@o1.ingest.sentry.io/2',
        envelopeUrl: 'https://o1.ingest.sentry.io/api/2/envelope/?sentry_version=7&sentry_key=REDACTED',
        rateLimit: { max: 3000, windowMs: 60000 },
      },
    ]);
    expect(report.summary.settings.limits.maxEnvelopeBytes).toBe(20971520);
    expect(result.stdout).not.toContain('0123456789abcdef');
  });

  it('--json lists each problem as {path, message, hint}; exit 1', async () => {
    const result = await check({ projects: { web: { dsn: DSN } }, limits: { maxEnvelopeByte: 1 } }, '--json');
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(report.valid).toBe(false);
    expect(report.summary).toBeNull();
    expect(report.errors).toEqual([{ path: 'limits.maxEnvelopeByte', message: 'unknown key "maxEnvelopeByte"', hint: 'did you mean "maxEnvelopeBytes"?' }]);
  });
});

describe('warnings', () => {
  const risky = {
    server: { trustProxy: true },
    projects: { web: { dsn: 'http://0123456789abcdef@sentry.example.com/2' }, local: { dsn: 'http://abcdef@127.0.0.1:9000/3' } },
    limits: { maxEnvelopeBytes: 50 * 1024 * 1024, maxDecodedBytes: 300 * 1024 * 1024 },
    selfMonitoring: { dsn: 'http://fedcba9876543210@sentry.example.com/9' },
  };

  it('are shown but pass without --strict; exit 0', async () => {
    const result = await check(risky);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('⚠ 5 warnings:');
    expect(result.stdout).toContain('projects.web.dsn: plain http to sentry.example.com');
    expect(result.stdout).not.toContain('projects.local.dsn: plain http');
    expect(result.stdout).toContain('selfMonitoring.dsn: plain http to sentry.example.com');
    expect(result.stdout).toContain('server.trustProxy: true believes X-Forwarded-For from anyone');
    expect(result.stdout).toContain("limits.maxEnvelopeBytes: 50 MiB is above Sentry's 20 MiB limit for a compressed request");
    expect(result.stdout).toContain("limits.maxDecodedBytes: 300 MiB is above Sentry's 200 MiB limit for a decompressed envelope");
  });

  it('fail the check with --strict; exit 1', async () => {
    const result = await check(risky, '--strict');
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('✘ configuration is valid but has 5 warnings, which --strict does not allow');
  });

  it('--strict --json: valid false, the warnings listed', async () => {
    const result = await check(risky, '--strict', '--json');
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { valid: boolean; warnings: { path: string }[] };
    expect(report.valid).toBe(false);
    expect(report.warnings.map((warning) => warning.path)).toEqual(['projects.web.dsn', 'selfMonitoring.dsn', 'server.trustProxy', 'limits.maxEnvelopeBytes', 'limits.maxDecodedBytes']);
  });

  it('--strict passes a configuration without warnings (the example); exit 0', async () => {
    expect((await runCli(['check-config', '--config', EXAMPLE, '--strict'])).code).toBe(0);
  });
});

describe('loads as serve does', () => {
  it('applies --host, --port and --dsn over the file', async () => {
    const result = await runCli(['check-config', '--config', EXAMPLE, '--host', '0.0.0.0', '--port', '9999', '--dsn', OTHER_DSN, '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, any>;
    expect(report.summary.listen.url).toBe('http://0.0.0.0:9999/tunnel');
    expect(report.summary.projects.map((project: { name: string }) => project.name).sort()).toEqual(['3', 'web']);
  });

  it('applies environment overrides, and flags win over them', async () => {
    const file = dir.write('env.json', { projects: { web: { dsn: DSN } } });
    const fromEnv = await runCli(['check-config', '--config', file, '--json'], { env: { SENTRY_TUNNEL_PORT: '7777', TUNNEL_TIMEOUT: '4000' } });
    const report = JSON.parse(fromEnv.stdout) as Record<string, any>;
    expect(report.summary.listen.port).toBe(7777);
    expect(report.summary.settings.upstream.timeoutMs).toBe(4000);
    const flagWins = await runCli(['check-config', '--config', file, '--port', '6666', '--json'], { env: { SENTRY_TUNNEL_PORT: '7777' } });
    expect((JSON.parse(flagWins.stdout) as Record<string, any>).summary.listen.port).toBe(6666);
  });

  it('finds the configuration file in the current directory', async () => {
    const project = tempDir();
    try {
      project.write('sentry-tunnel.config.json', { projects: { found: { dsn: DSN } } });
      const result = await runCli(['check-config'], { cwd: project.path });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`✔ configuration is valid: ${project.path}/sentry-tunnel.config.json`);
      expect(result.stdout).toContain('found → https://o1.ingest.sentry.io/api/2/');
    } finally {
      project.remove();
    }
  });

  // The CLI is bundled: cosmiconfig's loaders for YAML, JavaScript and package.json stay outside the
  // bundle and load only when such a file is found, so each format is read here by the real CLI.
  const formats: [string, string][] = [
    ['.sentry-tunnelrc.yaml', `projects:\n  found:\n    dsn: "${DSN}"\n`],
    ['.sentry-tunnelrc', `{ "projects": { "found": { "dsn": "${DSN}" } } }`],
    ['sentry-tunnel.config.js', `export default { projects: { found: { dsn: '${DSN}' } } };\n`],
    ['sentry-tunnel.config.cjs', `module.exports = { projects: { found: { dsn: '${DSN}' } } };\n`],
    ['package.json', JSON.stringify({ name: 'app', type: 'module', 'sentry-tunnel': { projects: { found: { dsn: DSN } } } })],
  ];

  it.each(formats)('reads %s', async (name, content) => {
    const project = tempDir();
    try {
      if (name !== 'package.json') project.write('package.json', { name: 'app', type: 'module' });
      project.write(name, content);
      const result = await runCli(['check-config'], { cwd: project.path });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`✔ configuration is valid: ${project.path}/${name}`);
      expect(result.stdout).toContain('found → https://o1.ingest.sentry.io/api/2/');
    } finally {
      project.remove();
    }
  });

  it('runs from --dsn alone, with no file', async () => {
    const empty = tempDir();
    try {
      const result = await runCli(['check-config', '--dsn', DSN], { cwd: empty.path });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('✔ configuration is valid: from flags and environment');
    } finally {
      empty.remove();
    }
  });

  it('rejects a --port that is not a port as a usage error; exit 2', async () => {
    const result = await runCli(['check-config', '--config', EXAMPLE, '--port', 'eighty']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('port must be 1–65535');
  });

  it('opens no socket: passes while the configured port is taken, and never resolves the DSN host', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = holder.address() as AddressInfo;
      const result = await check({ server: { host: '127.0.0.1', port }, projects: { web: { dsn: 'https://abc@sentry.invalid/2' } } });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`listen    http://127.0.0.1:${port}/tunnel`);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
