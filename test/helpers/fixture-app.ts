// Builds and runs the framework fixture apps under test/fixtures: installs this repo's package into an
// app the way npm would, runs a production build, and starts the app's server on a free loopback port.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export function fixtureDir(name: string): string {
  return join(REPO, 'test', 'fixtures', name);
}

/**
 * Copies package.json and dist/ into `<app>/node_modules/sentry-tunnel`, as an install from the
 * registry lays them out (a symlink would make bundlers treat it as the app's own source). Its
 * dependencies resolve upwards, from the repo's node_modules.
 */
export function installSelf(app: string): void {
  const target = join(app, 'node_modules', 'sentry-tunnel');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  cpSync(join(REPO, 'package.json'), join(target, 'package.json'));
  cpSync(join(REPO, 'dist'), join(target, 'dist'), { recursive: true, filter: (source) => !source.endsWith('.map') && !source.includes(`${'dist'}/bundle`) });
}

/** A port free on 127.0.0.1 a moment ago: listen on 0, read the port, close. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The environment a child gets: this process's, less what would steer it (a DSN, a Node.js option). */
function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: undefined, SENTRY_DSN: undefined, NODE_ENV: undefined, VITEST: undefined, VITEST_POOL_ID: undefined, VITEST_WORKER_ID: undefined };
  return { ...base, ...env };
}

export interface Run {
  output(): string;
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** Resolves once the output contains `text` (the tunnel's logger flushes within 200 ms); bounded by `timeoutMs`. */
  printed(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves when `url` answers any HTTP status; bounded by `timeoutMs`. */
  reachable(url: string, timeoutMs?: number): Promise<void>;
  /** SIGTERM to the whole process group, SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Runs `node <args>` in `cwd` as the leader of its own process group, so stop() reaches its children too. */
export function runNode(args: readonly string[], cwd: string, env: Record<string, string | undefined>): Run {
  const child: ChildProcess = spawn(process.execPath, args, { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const signal = (name: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, name);
    } catch {
      // the group is gone already
    }
  };
  return {
    output: () => output,
    exited,
    async printed(text, timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(text)) {
        if (Date.now() > deadline) throw new Error(`the output did not show ${JSON.stringify(text)} within ${timeoutMs} ms\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async reachable(url, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) break;
        const ok = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(2_000) }).then(
          () => true,
          () => false,
        );
        if (ok) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`${url} did not answer within ${timeoutMs} ms\n${output}`);
    },
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Children that ignored SIGTERM while their leader exited.
      signal('SIGKILL');
    },
  };
}

/** Runs `node <args>` to completion (a build); rejects with its output when it fails or outlasts `timeoutMs`. */
export async function runToEnd(args: readonly string[], cwd: string, env: Record<string, string | undefined>, timeoutMs: number): Promise<{ output: string; ms: number }> {
  const started = Date.now();
  const run = runNode(args, cwd, env);
  const child = await new Promise<{ code: number | null; timedOut: boolean }>((resolve) => {
    const timer = setTimeout(() => {
      void run.stop(1_000).then(() => resolve({ code: null, timedOut: true }));
    }, timeoutMs);
    void run.exited.then((code) => {
      clearTimeout(timer);
      resolve({ code, timedOut: false });
    });
  });
  if (child.timedOut) throw new Error(`node ${args.join(' ')} outlasted ${timeoutMs} ms\n${run.output()}`);
  if (child.code !== 0) throw new Error(`node ${args.join(' ')} exited ${child.code}\n${run.output()}`);
  return { output: run.output(), ms: Date.now() - started };
}
