// podman for the container tests: where it is, which Node.js base image to build on, and bounded calls.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';

/** The CI stand-in scripts/ci/deploy-tools.sh builds, then the official image if it was pulled before. */
const BASE_CANDIDATES = ['localhost/sentry-tunnel-ci/node:24-slim', 'docker.io/library/node:24-slim'];

export interface PodmanSetup {
  readonly podman: string;
  readonly baseImage: string;
}

/**
 * podman and a base image that is already in its storage (nothing is pulled), or why the container
 * tests cannot run here. Under CI that is an error, not a skip.
 */
export function findPodman(): PodmanSetup | string {
  const which = spawnSync('sh', ['-c', 'command -v podman'], { encoding: 'utf8' });
  const podman = which.stdout.trim();
  if (which.status !== 0 || podman === '') return 'podman is not installed (apt-get install podman runc)';
  const candidates = process.env.SENTRY_TUNNEL_NODE_IMAGE ? [process.env.SENTRY_TUNNEL_NODE_IMAGE] : BASE_CANDIDATES;
  const baseImage = candidates.find((image) => spawnSync(podman, ['image', 'exists', image], { timeout: 30_000 }).status === 0);
  if (baseImage === undefined) {
    return `none of the base images ${candidates.join(', ')} is in podman's storage (bash scripts/ci/deploy-tools.sh builds the first)`;
  }
  return { podman, baseImage };
}

export interface PodmanResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `podman args…` to completion, killed after `timeoutMs`; never throws on a non-zero exit. */
export function podman(setup: PodmanSetup, args: readonly string[], timeoutMs = 60_000): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    execFile(setup.podman, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && error.killed) return reject(new Error(`podman ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningContainer {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The container's stdout lines parsed as JSON; throws on a line that is not. */
  jsonLines(): Record<string, unknown>[];
  /** Resolves with the first stdout line matching `pattern` (bounded by `timeoutMs`). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with `podman run`'s exit code, which is the container's (bounded by `timeoutMs`). */
  exited(timeoutMs?: number): Promise<number>;
}

/** `podman run args…` in the foreground: its stdout and exit code are the container's. */
export function runContainer(setup: PodmanSetup, args: readonly string[]): RunningContainer {
  const child = spawn(setup.podman, ['run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exit = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    jsonLines: () =>
      out
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    async waitForLine(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const line = out.split('\n').find((candidate) => pattern.test(candidate));
        if (line !== undefined) return line;
        if (child.exitCode !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`no container output line matched ${pattern}\nstdout:\n${out}\nstderr:\n${err}`);
    },
    exited(timeoutMs = 60_000) {
      return Promise.race([
        exit,
        new Promise<number>((_, reject) =>
          setTimeout(() => reject(new Error(`podman run did not exit within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`)), timeoutMs).unref(),
        ),
      ]);
    },
  };
}
