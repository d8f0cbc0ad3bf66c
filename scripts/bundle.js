// Bundles the CLI (src/daemon/cli.ts) into dist/bundle/ for start-up time. Node 20's ESM loader pays for
// every file it resolves and compiles: zod, undici, cosmiconfig, commander and pino are hundreds of
// files, which cost more than the code in them. Bundled and tree-shaken, `check-config` and `serve`
// load a few large files instead. Each command stays in its own chunk (`import()` splits), so
// `--version` still loads only commander.
//
// Only the packages in INLINED (and what they import) are bundled. The others stay ordinary imports
// from node_modules: CommonJS packages the code loads with `import()`, whose namespace esbuild would
// change (prom-client broke; ioredis, @sentry/core), pino-pretty (required on demand), and
// cosmiconfig's loaders for formats other than JSON, which it requires only when such a file is
// found (typescript alone is 10 MB).
// The library entry point (dist/index.js) is tsc's output and is not affected.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const INLINED = /^(zod|undici|commander|cosmiconfig|env-paths|pino|bottleneck|proxy-addr|ipaddr\.js)(\/|$)/;
const LAZY_LOADERS = /^(typescript|js-yaml|import-fresh)$/;

const inlineOnly = {
  name: 'inline-only',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, ({ path, importer, kind }) => {
      if (kind === 'entry-point' || path.startsWith('node:')) return undefined;
      const inline = INLINED.test(path) || (importer.includes('/node_modules/') && !LAZY_LOADERS.test(path));
      return inline ? undefined : { path, external: true };
    });
  },
};

const OUT_DIR = 'dist/bundle';
rmSync(OUT_DIR, { recursive: true, force: true }); // chunk names change with their content

await build({
  entryPoints: { cli: 'src/daemon/cli.ts' },
  outdir: OUT_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  // Whitespace and syntax only: names stay as written, so stack traces in logs and self-monitoring
  // events stay readable. NODE_OPTIONS=--enable-source-maps maps them to src/*.ts lines too; it is
  // not on by default because reading the maps adds ~90 ms to the start of \`serve\`.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  // Inlined CommonJS code calls require() for Node's built-ins and the packages left outside.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [inlineOnly],
});
