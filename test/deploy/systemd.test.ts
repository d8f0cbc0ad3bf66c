// The systemd unit: systemd-analyze finds nothing wrong with it and rates its hardening, and its stop timeout, paths and environment fit the tunnel.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const UNIT = join(REPO, 'deploy/systemd/sentry-tunnel.service');
const ENV_FILE = join(REPO, 'deploy/systemd/sentry-tunnel.env');
const BIN = join(REPO, 'bin/sentry-tunnel.js');
/** systemd-analyze security's exposure, in tenths: 2.0 and below is rated "OK". */
const EXPOSURE_THRESHOLD = 20;

function systemdAnalyze(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() !== '' ? found.stdout.trim() : undefined;
}

function run(file: string, args: readonly string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}`.trim() });
    });
  });
}

/** The unit's `Key=value` lines (a key may repeat). */
function directives(unit: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const match = /^(\w+)=(.*)$/.exec(line);
    if (match) found.set(match[1] as string, [...(found.get(match[1] as string) ?? []), match[2] as string]);
  }
  return found;
}

/** The first ```json block of the README's "As a systemd service" section: the configuration it tells people to write. */
async function readmeConfig(): Promise<string> {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## As a systemd service'));
  const block = /```json\n([\s\S]*?)```/.exec(section);
  if (!block?.[1]) throw new Error('the README\'s "As a systemd service" section has no ```json block');
  return block[1];
}

describe('deploy/systemd/sentry-tunnel.service', () => {
  let unit: string;
  let keys: Map<string, string[]>;
  let tmp: string;
  let config: Config;
  const one = (key: string) => {
    const values = keys.get(key) ?? [];
    expect(values, key).toHaveLength(1);
    return values[0] as string;
  };

  beforeAll(async () => {
    unit = await readFile(UNIT, 'utf8');
    keys = directives(unit);
    tmp = await mkdtemp(join(tmpdir(), 'sentry-tunnel-systemd-'));
    // The configuration as the service loads it: the README's file and the shipped environment file.
    await writeFile(join(tmp, 'config.json'), await readmeConfig());
    const environment = Object.fromEntries(
      (await readFile(ENV_FILE, 'utf8'))
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('#'))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    ({ config } = await loadConfig({ config: join(tmp, 'config.json') }, environment));
  });

  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('stops on SIGTERM with time for the drain and the shutdown timeout, and does not restart on a configuration error', () => {
    expect(one('Type')).toBe('simple');
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(Number(one('TimeoutStopSec')) * 1000).toBeGreaterThan(config.server.shutdownTimeoutMs + config.server.drainDelayMs);
    expect(one('RestartPreventExitStatus')).toBe('2'); // serve's exit code for an invalid configuration
  });

  it('reads the configuration from its ConfigurationDirectory, spools to its StateDirectory and gets the DSNs from the environment file', () => {
    const command = one('ExecStart').split(' ');
    expect(command.slice(1)).toEqual(['serve', '--config', `/etc/${one('ConfigurationDirectory')}/config.json`]);
    expect(one('EnvironmentFile')).toBe(`-/etc/${one('ConfigurationDirectory')}/env`);
    expect(Object.keys(config.projects)).toHaveLength(1);
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.spool.dir?.startsWith(`/var/lib/${one('StateDirectory')}/`)).toBe(true);
    expect(one('DynamicUser')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
  });

  const analyze = systemdAnalyze();
  if (!analyze) {
    if (process.env.CI) {
      it('systemd-analyze is installed (required when CI is set)', () => {
        throw new Error('systemd-analyze is missing: .ci/run calls scripts/ci/deploy-tools.sh, which installs Debian\'s systemd');
      });
    } else {
      console.warn('skipping systemd-analyze on the unit file: systemd-analyze is not installed (apt-get install systemd)');
    }
  }

  /** The unit with ExecStart on this checkout's CLI: verify insists that the command exists. */
  async function installable(name: string, edit: (text: string) => string = (text) => text): Promise<string> {
    const file = join(tmp, name);
    await writeFile(file, edit(unit.replace(/^ExecStart=\S+/m, `ExecStart=${BIN}`)));
    return file;
  }

  describe.skipIf(!analyze)('systemd-analyze', () => {
    it('verify reports nothing at all', async () => {
      const result = await run(analyze as string, ['verify', await installable('sentry-tunnel.service')]);
      expect(result).toEqual({ code: 0, output: '' });
    });

    it('verify does report a misspelt directive (so the check above can fail)', async () => {
      const misspelt = await installable('misspelt.service', (text) => text.replace('ProtectSystem=', 'ProtectSystm='));
      const result = await run(analyze as string, ['verify', misspelt]);
      expect(result.output).toContain("Unknown key 'ProtectSystm'");
    });

    it(`security rates the hardening at an exposure of ${EXPOSURE_THRESHOLD / 10} or less`, async () => {
      const result = await run(analyze as string, ['security', '--offline=yes', `--threshold=${EXPOSURE_THRESHOLD}`, await installable('sentry-tunnel.service')]);
      const rating = /Overall exposure level for \S+: ([\d.]+ \w+)/.exec(result.output)?.[1];
      console.info(`systemd-analyze security: exposure ${rating}`);
      expect(result.code, result.output).toBe(0);
    });
  });
});
