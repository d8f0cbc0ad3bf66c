// The embedding entry (the package's "." export) pulls in nothing of the CLI: bundlers (Next.js,
// SvelteKit's Vite) follow every import, and commander, cosmiconfig's lazy loaders or pino-pretty
// would be dead weight there — or break at request time.
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { REPO, runNode } from '../helpers/run-cli.js';

/** Every module and package the entry imports, statically or with import(). */
async function importsOf(entry: string): Promise<{ files: string[]; packages: string[] }> {
  const result = await build({ entryPoints: [entry], bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'silent' });
  const files = Object.keys(result.metafile.inputs);
  const packages = new Set<string>();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imported of input.imports) if (imported.external && !imported.path.startsWith('node:')) packages.add(imported.path.split('/').slice(0, imported.path.startsWith('@') ? 2 : 1).join('/'));
  }
  return { files, packages: [...packages].sort() };
}

describe('the embedding entry', () => {
  it('imports none of the CLI: no commander, cosmiconfig, pino-pretty, nor src/daemon', async () => {
    const { files, packages } = await importsOf(`${REPO}/src/index.ts`);
    expect(files.filter((file) => file.includes('src/daemon/') || file.endsWith('config/load.ts'))).toEqual([]);
    expect(packages).not.toContain('commander');
    expect(packages).not.toContain('cosmiconfig');
    expect(packages).not.toContain('pino-pretty');
    // The CLI entry does import them, so the check above can tell.
    const cli = await importsOf(`${REPO}/src/daemon/cli.ts`);
    expect(cli.packages).toEqual(expect.arrayContaining(['commander', 'cosmiconfig']));
  });
});

describe('on an edge runtime', () => {
  it.each(['edge-light', 'workerd', 'browser'])('fails to import under the "%s" condition with a sentence saying why', async (condition) => {
    const result = await runNode(['-C', condition, '--input-type=module', '-e', "await import('sentry-tunnel')"], { cwd: REPO });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('sentry-tunnel needs Node.js ≥ 20.19');
    expect(result.stderr).toContain("runtime = 'nodejs'");
  });

  it('imports on Node.js', async () => {
    const result = await runNode(['--input-type=module', '-e', "const m = await import('sentry-tunnel'); console.log(typeof m.createTunnel)"], { cwd: REPO });
    expect(result).toMatchObject({ code: 0, stdout: 'function\n' });
  });
});
