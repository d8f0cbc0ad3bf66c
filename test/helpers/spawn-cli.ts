// Runs the real CLI (bin/sentry-tunnel.js → dist/) as a child process and collects its output.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/sentry-tunnel.js', import.meta.url));

export interface CliRun {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `pattern` (bounded by `timeoutMs`). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or 128 + signal number), bounded by `timeoutMs`. */
  exited(timeoutMs?: number): Promise<number>;
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function runCli(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    // No drain delay on SIGTERM unless a test asks for one: shutdown tests stay fast.
    env: { PATH: process.env.PATH ?? '', SENTRY_TUNNEL_DRAIN_DELAY_MS: '0', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exit = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? 128 + (SIGNALS[signal ?? ''] ?? 0)));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitForLine(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const line = out.split('\n').find((candidate) => pattern.test(candidate));
        if (line !== undefined) return line;
        if (child.exitCode !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`no output line matched ${pattern}\nstdout:\n${out}\nstderr:\n${err}`);
    },
    exited(timeoutMs = 15_000) {
      return Promise.race([
        exit,
        new Promise<number>((_, reject) =>
          setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`the CLI did not exit within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
          }, timeoutMs).unref(),
        ),
      ]);
    },
  };
}

/** The tunnel URL from serve's start-up line. */
export function listeningUrl(line: string): string {
  const match = /listening on (http:\/\/\S+)/.exec(line);
  if (!match?.[1]) throw new Error(`not a start-up line: ${line}`);
  return match[1];
}
