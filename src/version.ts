// The package's version, read from its own package.json through the package's self-reference, so it
// resolves the same from the tsc output (dist/) and from the bundled CLI (dist/bundle/).
import { createRequire } from 'node:module';

export const { version } = createRequire(import.meta.url)('sentry-tunnel/package.json') as { version: string };
