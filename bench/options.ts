// What to run and for how long: flags (`npm run bench -- --quick --only=2kb`) over environment
// variables (BENCH_QUICK=1, BENCH_ROUNDS=…) over the defaults, which finish in about fourteen minutes on a 2-core machine.
import { parseArgs } from 'node:util';
import type { Loader } from './load.js';
import { PEER_NAMES, type PeerName } from './peers.js';

export const SCENARIOS = ['startup', '2kb', '20kb', '1conn', 'flood', 'big', 'soak'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  readonly rounds: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly soakS: number;
  /** Sequential requests per big envelope and peer. */
  readonly bigRepeats: number;
  readonly startupRuns: number;
  readonly scenarios: ReadonlySet<Scenario>;
  readonly peers: readonly PeerName[];
  readonly loader: Loader | 'auto';
  /** Write the Markdown report here as well as to stdout. */
  readonly out: string | undefined;
  readonly keep: boolean;
  /** Run the Node peers under --cpu-prof, profiles written here. */
  readonly cpuProf: string | undefined;
}

export const USAGE = `npm run bench -- [options]

  --quick              2 short rounds, 10 s soak: a smoke run of everything (~2 min)
  --rounds N           interleaved rounds per throughput scenario (default 5)
  --duration S         seconds measured per peer and round (default 10)
  --warmup S           seconds of warm-up before each measurement (default 3)
  --connections N      concurrent connections (default 50)
  --soak S             seconds per soak run, two runs (default 60; 0 skips)
  --big-repeats N      sequential requests per big envelope and peer (default 3)
  --startup-runs N     runs per start-up figure (default 10)
  --only LIST          scenarios: ${SCENARIOS.join(',')} (default all)
  --peers LIST         ${PEER_NAMES.join(',')} (default all; nginx only when installed)
  --loader NAME        autocannon | wrk | auto (default auto: wrk when installed)
  --out FILE           also write the Markdown report to FILE
  --keep               keep the temporary directory (logs, configs)
  --cpu-prof DIR       run the Node peers under node --cpu-prof, profiles in DIR/<peer>/

Environment: BENCH_QUICK=1, BENCH_ROUNDS, BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS,
BENCH_SOAK, BENCH_ONLY, BENCH_PEERS, BENCH_LOADER; BENCH_PIN=0 runs the processes unpinned.`;

function list<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((item) => item.trim().toLowerCase()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

function count(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number ≥ ${min}`);
  return n;
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      soak: { type: 'string' },
      'big-repeats': { type: 'string' },
      'startup-runs': { type: 'string' },
      only: { type: 'string' },
      peers: { type: 'string' },
      loader: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick ?? env.BENCH_QUICK === '1';
  const loader = values.loader ?? env.BENCH_LOADER ?? 'auto';
  if (loader !== 'auto' && loader !== 'autocannon' && loader !== 'wrk') throw new Error('--loader must be autocannon, wrk or auto');
  const only = values.only ?? env.BENCH_ONLY;
  const peers = values.peers ?? env.BENCH_PEERS;
  return {
    rounds: count(values.rounds ?? env.BENCH_ROUNDS, 'rounds', quick ? 2 : 5),
    durationS: count(values.duration ?? env.BENCH_DURATION, 'duration', quick ? 3 : 10),
    warmupS: count(values.warmup ?? env.BENCH_WARMUP, 'warmup', quick ? 1 : 3, 0),
    connections: count(values.connections ?? env.BENCH_CONNECTIONS, 'connections', 50),
    soakS: count(values.soak ?? env.BENCH_SOAK, 'soak', quick ? 10 : 60, 0),
    bigRepeats: count(values['big-repeats'], 'big-repeats', quick ? 1 : 3),
    startupRuns: count(values['startup-runs'], 'startup-runs', quick ? 3 : 10),
    scenarios: new Set(only ? list(only, SCENARIOS, 'scenario') : SCENARIOS),
    peers: peers ? list(peers, PEER_NAMES, 'peer') : [...PEER_NAMES],
    loader,
    out: values.out,
    keep: values.keep ?? false,
    cpuProf: values['cpu-prof'],
  };
}
