// Regenerates sentry-tunnel.schema.json from the compiled config schema (`npm run schema` builds first).
import { writeFileSync } from 'node:fs';
import { SCHEMA_FILE, renderConfigJsonSchema } from '../dist/config/json-schema.js';

const target = new URL(`../${SCHEMA_FILE}`, import.meta.url);
writeFileSync(target, renderConfigJsonSchema());
process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
