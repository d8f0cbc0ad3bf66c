// Runs the real CLI to its end (exit code and all output, after the pipes closed), asynchronously so an
// in-process tunnel or fake Sentry in the same test keeps answering; and temp config files in a mkdtemp
// dir. For a CLI that keeps running (serve), use spawn-cli.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './spawn-cli.js';
export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/[\/]$/, '');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment without any SENTRY_TUNNEL_* override, so only what a test sets applies. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('SENTRY_') && name !== 'TUNNEL_TIMEOUT') env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs `node <args>` to its end, e.g. to import the package under other conditions; runCli runs the CLI this way. */
export function runNode(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...args],
      { cwd: options.cwd ?? REPO, env: cleanEnv(options.env), timeout: options.timeoutMs ?? 15_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(new Error(`node ${args[0] ?? ''} did not finish: ${error.message}\n${stderr}`));
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
}

export function runCli(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return runNode([BIN, ...args], options);
}

/** A temp directory for config files; `remove()` deletes it. */
export function tempDir(): { readonly path: string; write(name: string, content: unknown): string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'sentry-tunnel-test-'));
  return {
    path,
    write(name, content) {
      const file = join(path, name);
      writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      return file;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}
