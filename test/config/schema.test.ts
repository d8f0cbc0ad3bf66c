// The schema is built on zod/mini, which tree-shakes (schema.ts bundles to ~85 KB, ~770 KB with classic
// zod) but installs no locale: schema.ts installs English itself, and only English.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { REPO } from '../helpers/run-cli.js';

const DSN = 'https://abc123@o1.ingest.sentry.io/2';

describe('configSchema', () => {
  it("words zod's own problems in English, as classic zod did", () => {
    const result = configSchema.safeParse({ projects: { web: { dsn: DSN } }, upstream: { maxConnections: 0 }, log: { level: 'warning' } });
    expect(result.error?.issues.map((issue) => issue.message)).toEqual([
      'Too small: expected number to be >=1',
      'Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"',
    ]);
  });

  it('src/ imports zod/mini and the English locale only: never classic zod, never every locale', () => {
    const uses = (name: string) =>
      [...readFileSync(`${REPO}/src/${name}`, 'utf8').matchAll(/from '(zod[^']*)'|\bz\.locales\.\w+/g)].map((match) => `${name}: ${match[1] ?? match[0]}`);
    const found = readdirSync(`${REPO}/src`, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts')).flatMap(uses);
    expect(found.filter((use) => !/: zod\/mini$/.test(use))).toEqual(['config/schema.ts: zod/v4/locales/en.js']);
  });
});
