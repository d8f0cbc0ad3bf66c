// Every child process the bench starts: spawned through here, tracked, and stopped when the bench
// ends — normally, on an error, on Ctrl-C/SIGTERM, or when the whole-run deadline passes.
import { type ChildProcess, type SpawnOptions, execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { availableParallelism } from 'node:os';

const children = new Set<ChildProcess>();
let cleanupInstalled = false;

/**
 * Which core a process runs on, as issue 14 measured: the peer under test on one to itself, the load
 * generator (wrk) and the fake upstream on the other. Unpinned, the scheduler moved them around
 * and one process's CPU per request jumped between two levels (38 and 63 µs in one run) as it shared a
 * core or not. BENCH_PIN=0 turns it off; it needs taskset (util-linux) and two cores.
 */
export type Core = 'peer' | 'load';
const CORES: Record<Core, string> = { load: '0', peer: '1' };

function canPin(): boolean {
  if (process.env.BENCH_PIN === '0' || availableParallelism() < 2) return false;
  try {
    // Both cores must be ones this process may use (a container's cpuset may leave out CPU 1).
    for (const core of Object.values(CORES)) execFileSync('taskset', ['-c', core, 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const pinning = canPin();

/** `command args`, run on `core` when pinning is on (taskset execs the command: the pid is the command's). */
export function onCore(core: Core, command: string, args: readonly string[]): [string, string[]] {
  return pinning ? ['taskset', ['-c', CORES[core], command, ...args]] : [command, [...args]];
}

export function startProcess(command: string, args: readonly string[], options: SpawnOptions = {}, core?: Core): ChildProcess {
  installCleanup();
  const [file, argv] = core === undefined ? [command, [...args]] : onCore(core, command, args);
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'inherit'], ...options });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
export function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Synchronous last resort for exit paths: kill whatever is still running. */
export function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}

/** Kills every child on exit, on SIGINT/SIGTERM, and after `deadlineMs` (a hung bench must not run forever). */
export function installCleanup(deadlineMs?: number): void {
  if (deadlineMs !== undefined) {
    setTimeout(() => {
      process.stderr.write(`bench: deadline of ${Math.round(deadlineMs / 1000)} s reached, stopping everything\n`);
      killAll();
      process.exit(1);
    }, deadlineMs).unref();
  }
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping every process it started\n`);
      killAll();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects after `timeoutMs` or if `child` exits. */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
