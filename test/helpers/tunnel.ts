// Starts a tunnel in-process on 127.0.0.1:0 with a config built for the test (no drain delay unless the
// test sets one), and collects its log lines.
import { Writable } from 'node:stream';
import type { ConfigInput } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/load.js';
import { canonicalPath } from '../../src/core/routes.js';
import { createLogger } from '../../src/observability/logger.js';
import { type RunningTunnel, type StartOptions, startTunnel } from '../../src/daemon/server.js';

export interface TestTunnel extends RunningTunnel {
  /** Every log line the tunnel wrote so far, parsed. */
  logs(): Record<string, unknown>[];
  /** The raw log output, to assert what must never appear. */
  readonly rawLogs: () => string;
  post(body: Buffer | string, init?: { headers?: Record<string, string>; path?: string }): Promise<Response>;
}

type Overrides = Omit<ConfigInput, 'projects'> & { projects: ConfigInput['projects'] };

export async function startTestTunnel(input: Overrides, options: Partial<StartOptions> = {}): Promise<TestTunnel> {
  const config = validateConfig({ ...input, server: { host: '127.0.0.1', port: 0, drainDelayMs: 0, ...input.server }, log: { level: 'info', format: 'json', requests: 'all', ...input.log } });
  let raw = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw += chunk.toString();
      callback();
    },
  });
  const logger = createLogger(config.log, sink);
  const tunnel = await startTunnel(config, { logger, ...options });
  const origin = `http://127.0.0.1:${tunnel.address.port}`;
  return Object.assign(tunnel, {
    logs: () =>
      raw
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    rawLogs: () => raw,
    post: (body: Buffer | string, init: { headers?: Record<string, string>; path?: string } = {}) =>
      fetch(`${origin}${init.path ?? canonicalPath(config.server.path)}`, { method: 'POST', body, headers: init.headers }),
  });
}
