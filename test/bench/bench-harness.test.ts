// The benchmark's pure parts: reading wrk's report, the options that decide what a run measures, and
// how the refusal floods are judged.
import { describe, expect, it } from 'vitest';
import { parseWrk } from '../../bench/load.js';
import { parseOptions } from '../../bench/options.js';
import { type FloodSample, floodTable, floodTargets, median } from '../../bench/report.js';

const WRK_OUTPUT = `Running 10s test @ http://127.0.0.1:39069/tunnel
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.95ms    4.12ms  62.31ms   88.70%
    Req/Sec     5.19k   412.55     5.83k    72.00%
  Latency Distribution
     50%    8.12ms
     75%    9.80ms
     90%   12.44ms
     99%  950.00us
  51654 requests in 10.00s, 8.92MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   5165.12
Transfer/sec:    912.48KB
`;

describe('parseWrk', () => {
  it('reads requests/s, percentiles in their units, and counts socket errors and non-2xx answers as errors', () => {
    expect(parseWrk(WRK_OUTPUT)).toEqual({ rps: 5165.12, p50Ms: 8.12, p99Ms: 0.95, errors: 10, requests: 51654 });
  });

  it('reports no errors when wrk printed none', () => {
    const clean = WRK_OUTPUT.replace(/ {2}Socket errors.*\n/, '').replace(/ {2}Non-2xx.*\n/, '');
    expect(parseWrk(clean).errors).toBe(0);
  });
});

describe('parseOptions', () => {
  it('defaults to the full run: 5 rounds of 10 s, 50 connections, a 60 s soak, every scenario and peer', () => {
    const options = parseOptions([], {});
    expect(options).toMatchObject({ rounds: 5, durationS: 10, connections: 50, soakS: 60, loader: 'auto' });
    if (options === 'help') throw new Error('unexpected help');
    expect([...options.scenarios]).toEqual(['startup', '2kb', '20kb', '1conn', 'flood', 'big', 'soak']);
    expect(options.peers).toEqual(['sentry-tunnel', 'pass-through', 'express', 'nginx', 'tunnel-log-all']);
  });

  it('--quick shortens everything, and flags win over the environment', () => {
    expect(parseOptions(['--quick'], {})).toMatchObject({ rounds: 2, durationS: 3, soakS: 10, bigRepeats: 1 });
    expect(parseOptions(['--rounds', '5'], { BENCH_ROUNDS: '7', BENCH_QUICK: '1' })).toMatchObject({ rounds: 5, durationS: 3 });
  });

  it('rejects unknown scenarios, peers and loaders, and counts below the minimum', () => {
    expect(() => parseOptions(['--only', '2kb,huge'], {})).toThrow(/unknown scenario "huge"/);
    expect(() => parseOptions(['--peers', 'caddy'], {})).toThrow(/unknown peer "caddy"/);
    expect(() => parseOptions(['--loader', 'ab'], {})).toThrow(/--loader/);
    expect(() => parseOptions(['--rounds', '0'], {})).toThrow(/--rounds must be a whole number ≥ 1/);
  });
});

describe('median', () => {
  it('is the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('pinning', () => {
  it('runs a peer on CPU 1 when taskset and two cores are there', async () => {
    const { onCore, pinning } = await import('../../bench/processes.js');
    const { execFileSync } = await import('node:child_process');
    const { availableParallelism } = await import('node:os');
    let taskset = true;
    try {
      for (const core of ['0', '1']) execFileSync('taskset', ['-c', core, 'true'], { stdio: 'ignore' });
    } catch {
      taskset = false;
    }
    const [file, args] = onCore('peer', process.execPath, ['-p', "/Cpus_allowed_list:\\s*(\\S+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]"]);
    const allowed = execFileSync(file, args, { encoding: 'utf8' }).trim();
    if (!taskset || availableParallelism() < 2 || process.env.BENCH_PIN === '0') {
      console.log(`pinning is off here (taskset ${taskset ? 'can use CPUs 0 and 1' : 'missing or not allowed CPUs 0 and 1'}, ${availableParallelism()} cores): the command runs as it is`);
      expect(pinning).toBe(false);
      expect(file).toBe(process.execPath);
      return;
    }
    expect(pinning).toBe(true);
    expect(file).toBe('taskset');
    expect(allowed).toBe('1');
  });
});

describe('floodTargets', () => {
  const sample = (round: number, kind: FloodSample['kind'], rps: number): FloodSample => ({
    round,
    kind,
    load: { rps, p50Ms: 1, p99Ms: 2, errors: kind === 'forward' ? 0 : rps * 10, requests: rps * 10 },
    cpuUsPerRequest: 1e6 / rps,
    expected: true,
  });
  const rounds = (forward: number, least: number, refused: number, budget: number) =>
    [1, 2, 3].flatMap((round) => [sample(round, 'forward', forward), sample(round, 'floor-403', least), sample(round, '403', refused), sample(round, '429', budget)]);

  it("judges each refusal against the floor's forwarding rate, and names the floor's own 403 next to the 403 target", () => {
    const [refused, budget] = floodTargets(rounds(10_000, 14_300, 11_100, 16_000));
    expect(refused).toMatchObject({ figure: "flood answered 403 vs the floor's forwarding rate", measured: "1.11 × (the floor's own 403: 1.43 ×)", holds: false });
    expect(budget).toMatchObject({ measured: '1.60 ×', holds: true });
    expect(floodTable(rounds(10_000, 14_300, 11_100, 16_000), 50, 10, 'wrk')).toContain('| the floor, foreign DSN (403): the least a refusal costs | 14,300 (14,300–14,300) |');
  });

  it('holds at 1.5 × and leaves the note out when the floor did not refuse', () => {
    const samples = rounds(10_000, 0, 15_000, 15_000).filter((s) => s.kind !== 'floor-403');
    expect(floodTargets(samples).map((t) => [t.measured, t.holds])).toEqual([
      ['1.50 ×', true],
      ['1.50 ×', true],
    ]);
  });
});
