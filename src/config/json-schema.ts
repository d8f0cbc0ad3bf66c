// The configuration's JSON Schema for editors (autocomplete, unknown keys flagged), generated from the
// same zod schema the code validates with; `npm run schema` writes it to sentry-tunnel.schema.json.
import * as z from 'zod/mini';
import { configSchema } from './schema.js';

export const SCHEMA_FILE = 'sentry-tunnel.schema.json';

export function configJsonSchema(): Record<string, unknown> {
  // Input side: options with defaults are optional in the file. Draft-07 is the draft every editor
  // understands. Anything JSON Schema cannot express (a transform, a custom check) stays unconstrained
  // here and is still checked by check-config.
  const { $schema, ...schema } = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-7', unrepresentable: 'any' });
  return {
    $schema,
    title: 'sentry-tunnel configuration',
    description: 'Generated from src/config/schema.ts by `npm run schema`; validate with `sentry-tunnel check-config`.',
    ...schema,
  };
}

/** The file's exact contents. */
export function renderConfigJsonSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
