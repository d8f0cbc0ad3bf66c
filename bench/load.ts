// The load generators: autocannon (the Node ecosystem's usual one) or wrk when it is installed, both
// at a fixed connection count for a fixed duration, posting the same envelope over keep-alive.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { onCore } from './processes.js';

export type Loader = 'autocannon' | 'wrk';

export interface LoadSpec {
  readonly url: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly durationS: number;
}

export interface LoadResult {
  /** Completed responses per second. */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Non-2xx answers, socket errors and timeouts. */
  readonly errors: number;
  readonly requests: number;
}

export function runLoad(loader: Loader, spec: LoadSpec, workDir: string): Promise<LoadResult> {
  return loader === 'wrk' ? runWrk(spec, workDir) : runAutocannon(spec);
}

async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const result = await autocannon({
    url: spec.url,
    method: 'POST',
    headers: { ...spec.headers },
    body: spec.body,
    connections: spec.connections,
    duration: spec.durationS,
    timeout: 10,
  });
  return {
    rps: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
    requests: result.requests.total,
  };
}

const WRK_SCRIPT = `
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
`;

/** wrk with a Lua script that posts the envelope; one thread, because the peer needs the other core. */
async function runWrk(spec: LoadSpec, workDir: string): Promise<LoadResult> {
  const bodyFile = join(workDir, 'wrk-body.bin');
  const script = join(workDir, 'wrk-post.lua');
  writeFileSync(bodyFile, spec.body);
  writeFileSync(script, WRK_SCRIPT);
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.durationS}s`, '--timeout', '10s', '--latency', '-s', script];
  for (const [name, value] of Object.entries(spec.headers)) args.push('-H', `${name}: ${value}`);
  args.push(spec.url);
  const [file, argv] = onCore('load', 'wrk', args);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(file, argv, { env: { ...process.env, BENCH_BODY: bodyFile }, timeout: (spec.durationS + 30) * 1000 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });
  return parseWrk(output);
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

export function parseWrk(output: string): LoadResult {
  const percentile = (p: string) => {
    const match = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)`, 'm').exec(output);
    return match ? toMs(match[1] ?? '0', match[2] ?? 'ms') : Number.NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return { rps, p50Ms: percentile('50'), p99Ms: percentile('99'), errors: non2xx + socketErrors, requests };
}
