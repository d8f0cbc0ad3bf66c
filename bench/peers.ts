// The contenders, each started in its own process on a free loopback port and pointed at the fake
// upstream: sentry-tunnel (the real CLI with a config file, default log level; also with a line logged
// per request, and with a tiny per-client budget for the 429 flood), the floor (peers/passthrough.ts),
// the copied Express handler, and nginx proxy_pass when an `nginx` binary is on PATH.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, stopProcess, waitForPort } from './processes.js';

export const PEER_NAMES = ['sentry-tunnel', 'pass-through', 'express', 'nginx', 'tunnel-log-all'] as const;
/** `tunnel-budget` is started by the flood scenario only: a per-client budget of one envelope an hour. */
export type PeerName = (typeof PEER_NAMES)[number] | 'tunnel-budget';

/** What each sentry-tunnel variant changes in the bench's configuration. */
const TUNNEL_OVERLAYS: Record<'sentry-tunnel' | 'tunnel-log-all' | 'tunnel-budget', Record<string, object>> = {
  'sentry-tunnel': {},
  // The issue's "one line per request" bar (the default, "summary", logs only 5xx and spooled ones).
  'tunnel-log-all': { log: { requests: 'all' } },
  'tunnel-budget': { rateLimit: { perClient: { max: 1, windowMs: 3_600_000 } } },
};

export const MiB = 1024 * 1024;
const BUILD_DIR = fileURLToPath(new URL('.', import.meta.url));
export const REPO_DIR = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(REPO_DIR, 'bin', 'sentry-tunnel.js');

export interface Upstream {
  readonly port: number;
  /** The DSN every envelope carries; its host is the fake upstream. */
  readonly dsn: string;
  readonly projectId: string;
}

/** The project every bench envelope is for, on the fake upstream listening on `port`. */
export function benchUpstream(port: number): Upstream {
  return { port, projectId: '2', dsn: `http://0123456789abcdef0123456789abcdef@127.0.0.1:${port}/2` };
}

/** Where a floor-like peer (`node SCRIPT PORT UPSTREAM_URL DSN`) posts: the fake upstream's envelope endpoint. */
export function envelopeUrl(upstream: Upstream): string {
  return `http://127.0.0.1:${upstream.port}/api/${upstream.projectId}/envelope/`;
}

export interface RunningPeer {
  readonly name: PeerName;
  /** Where envelopes are posted. */
  readonly url: string;
  /** Processes whose memory counts as the peer's. */
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function hasBinary(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The bench's sentry-tunnel configuration: defaults, CORS like the example, one project pointed at the fake upstream. */
export function tunnelConfig(port: number, upstream: Upstream): object {
  return {
    // No load balancer to tell: stop at once on SIGTERM (the 5 s default outlasts stopProcess' grace, and
    // a killed peer writes no --cpu-prof profile).
    server: { host: '127.0.0.1', port, path: '/tunnel', drainDelayMs: 0 },
    projects: { web: { dsn: upstream.dsn } },
    cors: { origins: ['https://app.example.com', 'http://localhost:3000'] },
    // Raised from the 20 MiB default so the 50 MiB attachment envelope is accepted.
    limits: { maxEnvelopeBytes: 64 * MiB, maxDecodedBytes: 128 * MiB },
    // The load generator is one address standing in for many browsers: a budget so large that the
    // per-client check runs on every request but never refuses (issue 14). The global concurrency
    // limit and queue stay at their defaults.
    rateLimit: { perClient: { max: 1_000_000_000, windowMs: 1_000 } },
  };
}

async function spawnPeer(name: PeerName, dir: string, port: number, command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const out = openSync(join(dir, `${name}.out.log`), 'a');
  const err = openSync(join(dir, `${name}.err.log`), 'a');
  const child = startProcess(command, args, { stdio: ['ignore', out, err], env: { ...process.env, ...env } }, 'peer');
  closeSync(out);
  closeSync(err);
  await waitForPort(port, child).catch((error: Error) => {
    throw new Error(`${name} did not start: ${error.message} (see ${join(dir, `${name}.err.log`)})`);
  });
  return { child, url: `http://127.0.0.1:${port}/tunnel` };
}

/** `cpuProfDir`: run the Node peers under `--cpu-prof`, one sub-directory each (written when they stop). */
export async function startPeer(name: PeerName, dir: string, upstream: Upstream, cpuProfDir?: string, env?: NodeJS.ProcessEnv): Promise<RunningPeer> {
  const node = (...args: string[]) => (cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, name)}`, ...args] : args);
  const port = await freePort();
  const upstreamHost = `127.0.0.1:${upstream.port}`;
  let child: ChildProcess;
  let url: string;
  switch (name) {
    case 'sentry-tunnel':
    case 'tunnel-log-all':
    case 'tunnel-budget': {
      const config = join(dir, `${name}.config.json`);
      writeFileSync(config, JSON.stringify({ ...tunnelConfig(port, upstream), ...TUNNEL_OVERLAYS[name] }, null, 2));
      ({ child, url } = await spawnPeer(name, dir, port, process.execPath, node(CLI, 'serve', '--config', config)));
      break;
    }
    case 'pass-through':
      ({ child, url } = await spawnPeer(name, dir, port, process.execPath, node(join(BUILD_DIR, 'peers', 'passthrough.js'), String(port), envelopeUrl(upstream), upstream.dsn), env));
      break;
    case 'express':
      ({ child, url } = await spawnPeer(name, dir, port, process.execPath, node(join(BUILD_DIR, 'peers', 'express-handler.js'), String(port), upstreamHost, upstream.projectId)));
      break;
    case 'nginx': {
      const conf = writeNginxConfig(dir, port, upstream);
      ({ child, url } = await spawnPeer(name, dir, port, 'nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'nginx.error.log')]));
      break;
    }
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} has no pid`);
  return { name, url, pids: [pid], stop: () => stopProcess(child) };
}

/** One nginx process (master_process off) with one worker's worth of event loop, like each Node peer. */
function writeNginxConfig(dir: string, port: number, upstream: Upstream): string {
  const temp = join(dir, 'nginx-temp');
  mkdirSync(temp, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx.error.log')} warn;
events { worker_connections 1024; }
http {
  access_log ${join(dir, 'nginx.access.log')};
  client_body_temp_path ${temp}/body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  client_max_body_size 64m;
  # Like sentry-tunnel (which buffers bodies up to 256 KiB): keep small bodies in memory, not in temp files.
  client_body_buffer_size 256k;
  upstream sentry {
    server 127.0.0.1:${upstream.port};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    location = /tunnel {
      proxy_pass http://sentry/api/${upstream.projectId}/envelope/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  return conf;
}
