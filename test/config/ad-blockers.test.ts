// check-config warns before ad blockers block a tunnel path, from rules taken out of the real filter lists.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { NEUTRAL_PATHS, blockingRule } from '../../src/config/ad-blockers.js';
import { BLOCKED_PATH_RULES, BLOCKED_PATHS_SOURCE } from '../../src/config/blocked-paths.js';
import { blockedBy, filterListsMissing, filtersEngine, installedListsVersion } from '../helpers/filter-lists.js';
import { REPO, runCli, tempDir } from '../helpers/run-cli.js';

const DSN = 'https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/2';
const BLOCKED = { '/log/sentry': '/log/sentry/*', '/shared/sentry': '/shared/sentry/*', '/rum-telemetry': '/rum-telemetry/*' };
const NEUTRAL = ['/tunnel', '/api/sentry-tunnel', '/monitoring', '/api/errors'];

describe('the generic rules of the filter lists, as data', () => {
  it('says which package version and lists they came from', () => {
    expect(BLOCKED_PATHS_SOURCE).toMatchObject({ package: 'webext-ublock-origin-chromium', lists: ['EasyList', 'EasyPrivacy', 'uBlock filters', 'uBlock filters – Privacy'] });
    expect(BLOCKED_PATHS_SOURCE.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(BLOCKED_PATH_RULES.length).toBeGreaterThan(1000);
  });

  it('finds the rule that blocks each shape from the issue, and none for neutral paths', () => {
    for (const [path, rule] of Object.entries(BLOCKED)) expect(blockingRule(`${path}/x`), path).toEqual({ rule, list: 'EasyPrivacy' });
    for (const path of [...NEUTRAL, ...NEUTRAL_PATHS, '/tunnel/web']) expect(blockingRule(path), path).toBeUndefined();
  });
});

describe('check-config', () => {
  it('warns for each path whose own URL or {path}/<project> a generic rule blocks, naming the rule and a neutral path; exit 0, or 1 under --strict', async () => {
    const dir = tempDir();
    const paths = ['/api/sentry-tunnel', '/log/sentry/tunnel', '/shared/sentry', '/rum-telemetry'];
    const file = dir.write('config.json', { server: { path: paths }, projects: { web: { dsn: DSN } } });
    const result = await runCli(['check-config', '--config', file]);
    expect(result.code).toBe(0);
    const lists = `lists of webext-ublock-origin-chromium ${BLOCKED_PATHS_SOURCE.version}`;
    const warnings = result.stdout.slice(result.stdout.indexOf('⚠')).trimEnd().split('\n');
    expect(warnings).toEqual([
      '⚠ 3 warnings:',
      `  server.path.1: ad blockers block POST /log/sentry/tunnel: EasyPrivacy's generic rule "/log/sentry/*" matches it on any site (${lists}) — choose a neutral path such as "/tunnel", and keep this one listed while clients still post to it: "path": ["/tunnel", "/log/sentry/tunnel"]`,
      `  server.path.2: ad blockers block POST /shared/sentry/web: EasyPrivacy's generic rule "/shared/sentry/*" matches it on any site (${lists}) — choose a neutral path such as "/tunnel", and keep this one listed while clients still post to it: "path": ["/tunnel", "/shared/sentry"]`,
      `  server.path.3: ad blockers block POST /rum-telemetry/web: EasyPrivacy's generic rule "/rum-telemetry/*" matches it on any site (${lists}) — choose a neutral path such as "/tunnel", and keep this one listed while clients still post to it: "path": ["/tunnel", "/rum-telemetry"]`,
    ]);
    const strict = await runCli(['check-config', '--config', file, '--strict', '--json']);
    expect(strict.code).toBe(1);
    expect((JSON.parse(strict.stdout) as { warnings: { path: string }[] }).warnings.map((warning) => warning.path)).toEqual(['server.path.1', 'server.path.2', 'server.path.3']);

    const single = dir.write('single.json', { server: { path: '/rum-telemetry/envelopes' }, projects: { web: { dsn: DSN } } });
    const one = await runCli(['check-config', '--config', single]);
    expect(one.stdout).toContain(`server.path: ad blockers block POST /rum-telemetry/envelopes: EasyPrivacy's generic rule "/rum-telemetry/*"`);
    expect(one.stdout).toContain('"path": ["/tunnel", "/rum-telemetry/envelopes"]');
    dir.remove();
  });

  it('says nothing about neutral paths', async () => {
    const dir = tempDir();
    const file = dir.write('config.json', { server: { path: NEUTRAL }, projects: { web: { dsn: DSN } } });
    const result = await runCli(['check-config', '--config', file, '--strict']);
    expect(result.stdout).not.toContain('ad blockers');
    expect(result.code).toBe(0);
    dir.remove();
  });
});

const missing = filterListsMissing();

describe.skipIf(missing !== undefined)('the data against the real lists and @ghostery/adblocker', () => {
  it('is what scripts/blocked-paths.js makes of the installed lists (when they are the version it came from)', () => {
    const installed = installedListsVersion();
    if (installed !== BLOCKED_PATHS_SOURCE.version) {
      console.warn(`webext-ublock-origin-chromium ${installed} is installed, src/config/blocked-paths.ts came from ${BLOCKED_PATHS_SOURCE.version}: run \`npm run blocked-paths\``);
      return;
    }
    const check = spawnSync(process.execPath, ['scripts/blocked-paths.js', '--check'], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('agrees with the engine: every kept rule, made into a path, is blocked by both, and the neutral paths by neither', () => {
    const engine = filtersEngine();
    const disagreements: string[] = [];
    for (const [, rule] of BLOCKED_PATH_RULES) {
      if (rule.startsWith('@@')) continue;
      // The pattern with its wildcards filled in: a URL path the rule must match.
      const pattern = rule.split('$')[0] ?? '';
      const path = pattern.replace(/^\|/, '').replace(/\|$/, '').replace(/\*/g, 'x').replace(/\^/g, '/');
      if (!path.startsWith('/')) continue;
      const url = `https://app.example.com${path}`;
      const ours = blockingRule(path);
      const theirs = blockedBy(engine, url);
      if ((ours === undefined) !== (theirs === undefined)) disagreements.push(`${path}: ours ${ours?.rule ?? 'not blocked'}, engine ${theirs ?? 'not blocked'}`);
    }
    expect(disagreements).toEqual([]);
    for (const path of [...NEUTRAL, ...NEUTRAL_PATHS]) expect(blockedBy(engine, `https://app.example.com${path}`), path).toBeUndefined();
    for (const [path, rule] of Object.entries(BLOCKED)) expect(blockedBy(engine, `https://app.example.com${path}/x`)).toBe(rule);
  });
});
