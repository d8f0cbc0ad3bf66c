// The committed sentry-tunnel.schema.json is generated from the zod schema and kept up to date; the
// example config points at it, uses only keys it knows, and shows every option.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCHEMA_FILE, configJsonSchema, renderConfigJsonSchema } from '../../src/config/json-schema.js';
import { REPO } from '../helpers/run-cli.js';

type JsonSchema = { type?: string; properties?: Record<string, JsonSchema>; additionalProperties?: boolean | JsonSchema; description?: string; anyOf?: JsonSchema[] };

const committed = readFileSync(`${REPO}/${SCHEMA_FILE}`, 'utf8');
const example = JSON.parse(readFileSync(`${REPO}/sentry-tunnel.config.example.json`, 'utf8')) as Record<string, unknown>;

/**
 * Dotted paths of every option (leaf property) in the schema. A record of objects (projects) contributes
 * its values' options under "*"; a record of plain values (tags) is one option itself.
 */
function options(schema: JsonSchema, prefix = ''): [string, JsonSchema][] {
  if (schema.properties) {
    return Object.entries(schema.properties).flatMap(([key, child]) => options(child, prefix ? `${prefix}.${key}` : key));
  }
  const values = schema.additionalProperties;
  if (schema.type === 'object' && typeof values === 'object' && values.properties) return options(values, `${prefix}.*`);
  return [[prefix, schema]];
}

function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return [value];
  if (value === null || typeof value !== 'object') return [];
  const [head = '', ...rest] = path;
  const children = head === '*' ? Object.values(value) : head in value ? [(value as Record<string, unknown>)[head]] : [];
  return children.flatMap((child) => valuesAt(child, rest));
}

describe('sentry-tunnel.schema.json', () => {
  it('is up to date with src/config/schema.ts (run `npm run schema` when this fails)', () => {
    expect(committed).toBe(renderConfigJsonSchema());
  });

  it('is a draft-07 schema that flags unknown keys in every section', () => {
    const schema = configJsonSchema() as JsonSchema & { $schema: string };
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
    for (const [name, section] of Object.entries(schema.properties ?? {})) {
      if (section.type === 'object' && section.properties) expect([name, section.additionalProperties]).toEqual([name, false]);
    }
  });

  it('describes every option', () => {
    const undescribed = options(configJsonSchema() as JsonSchema).filter(([, schema]) => !schema.description).map(([path]) => path);
    expect(undescribed).toEqual([]);
  });

  it('ships in the package and the example config points at it', () => {
    const pkg = JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')) as { files: string[]; scripts: Record<string, string> };
    expect(pkg.files).toContain(SCHEMA_FILE);
    expect(pkg.scripts.schema).toContain('scripts/write-schema.js');
    expect(example.$schema).toBe(`./${SCHEMA_FILE}`);
  });

  it('knows every key the example config uses, and the example shows every option', () => {
    const all = options(configJsonSchema() as JsonSchema).map(([path]) => path);
    const missing = all.filter((path) => path !== '$schema' && valuesAt(example, path.split('.')).length === 0);
    expect(missing).toEqual([]);
    const unknown = Object.keys(example).filter((key) => !(key in ((configJsonSchema() as JsonSchema).properties ?? {})));
    expect(unknown).toEqual([]);
  });
});
