// The `filters` and `enrich` options: validated at start-up with every problem listed by path, and no
// processor at all (the streaming fast path) when nothing is configured.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/load.js';
import { Processor } from '../../src/processing/processing.js';

const DSN = 'https://abc123def456@o1.ingest.sentry.io/2';
const projects = { web: { dsn: DSN } };

function problems(input: Record<string, unknown>): { path: string; message: string }[] {
  try {
    validateConfig({ projects, ...input });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map(({ path, message }) => ({ path, message }));
    throw error;
  }
  return [];
}

describe('validation', () => {
  it('accepts the issue example', () => {
    expect(
      problems({
        filters: [
          { dropItemTypes: ['client_report'] },
          {
            dropEvents: {
              message: ['ResizeObserver loop', '/^Script error\\.?$/'],
              exceptionType: ['ChunkLoadError'],
              environment: ['development'],
              release: [],
              level: ['debug'],
              userAgent: ['/bot|crawler|spider/i'],
            },
          },
        ],
        enrich: { tags: { server_region: 'eu-west-1', tunnel: 'eu-1' }, clientIp: false },
      }),
    ).toEqual([]);
  });

  it('lists every bad rule with its path', () => {
    const found = problems({
      filters: [
        { dropEvents: { message: ['/unclosed(/'], userAgent: ['/bot/g'], level: [''] } },
        {},
        { dropItemTypes: ['event'], dropEvent: {} },
        { dropEvents: { fingerprint: ['x'] } },
      ],
      enrich: { tags: { 'has space': 'x', ok: '', long: 'x'.repeat(201), nl: 'a\nb' }, clientIp: 'yes' },
    });
    const paths = found.map((problem) => problem.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'filters.0.dropEvents.message.0',
        'filters.0.dropEvents.userAgent.0',
        'filters.0.dropEvents.level.0',
        'filters.1',
        'filters.2.dropEvent',
        'filters.3.dropEvents.fingerprint',
        'enrich.tags.has space',
        'enrich.tags.ok',
        'enrich.tags.long',
        'enrich.tags.nl',
        'enrich.clientIp',
      ]),
    );
    expect(found.find((problem) => problem.path === 'filters.0.dropEvents.message.0')?.message).toMatch(/not a valid regular expression/);
    expect(found.find((problem) => problem.path === 'filters.0.dropEvents.userAgent.0')?.message).toMatch(/flags/);
    expect(found.find((problem) => problem.path === 'filters.1')?.message).toBe('a filter needs "dropItemTypes" or "dropEvents"');
  });
});

describe('${VAR} in enrich.tags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentry-tunnel-enrich-'));
  const file = join(dir, 'sentry-tunnel.config.json');
  writeFileSync(file, JSON.stringify({ projects, enrich: { tags: { server_region: '${AWS_REGION}' } } }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the environment at start-up', async () => {
    const { config } = await loadConfig({ config: file }, { AWS_REGION: 'eu-central-1' }, dir);
    expect(config.enrich.tags).toEqual({ server_region: 'eu-central-1' });
  });

  it('an unset variable is a config problem at its path', async () => {
    const error = await loadConfig({ config: file }, {}, dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toContainEqual(expect.objectContaining({ path: 'enrich.tags.server_region', message: 'environment variable AWS_REGION is not set' }));
  });
});

describe('Processor.create', () => {
  it('is undefined without rules, so requests keep the streaming path', () => {
    expect(Processor.create(validateConfig({ projects }))).toBeUndefined();
    expect(Processor.create(validateConfig({ projects, filters: [{ dropEvents: { release: [] } }], enrich: { tags: {} } }))).toBeUndefined();
  });

  it('exists as soon as one rule is configured', () => {
    expect(Processor.create(validateConfig({ projects, filters: [{ dropItemTypes: ['client_report'] }] }))).toBeInstanceOf(Processor);
    expect(Processor.create(validateConfig({ projects, enrich: { clientIp: true } }))).toBeInstanceOf(Processor);
  });
});
