// The Markdown report: medians with min–max over rounds, the ratios against the pass-through and the
// Express handler (per round, then the median), refusal floods, big-envelope and soak figures, start-up
// timings, and each target of issues 9 and 14 marked as holding or missed.
import type { BigResult } from './big.js';
import type { LoadResult } from './load.js';
import type { SoakResult } from './soak.js';
import type { StartupResult } from './startup.js';
import type { ThroughputSample } from './throughput.js';

const MiB = 1024 * 1024;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)", or just the value when there is one. */
function spread(values: readonly number[], digits = 0): string {
  if (values.length === 0) return '–';
  if (values.length === 1) return fmt(values[0] as number, digits);
  return `${fmt(median(values), digits)} (${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)})`;
}

function latencyDigits(values: readonly number[]): number {
  return Math.max(...values) < 10 ? 2 : 1;
}

export interface Target {
  readonly figure: string;
  readonly target: string;
  readonly measured: string;
  readonly holds: boolean;
}

export interface ThroughputSection {
  readonly title: string;
  readonly samples: readonly ThroughputSample[];
}

/** Per-round ratio of a figure between two peers, so both sides of a ratio saw the same machine state. */
function roundRatios(samples: readonly ThroughputSample[], a: string, b: string, figure: (s: ThroughputSample) => number): number[] {
  const ratios: number[] = [];
  for (const sample of samples.filter((s) => s.peer === a)) {
    const other = samples.find((s) => s.peer === b && s.round === sample.round);
    if (other && figure(other) > 0) ratios.push(figure(sample) / figure(other));
  }
  return ratios;
}

export function throughputTable(section: ThroughputSection, connections: number, durationS: number, loader: string): string {
  const { samples } = section;
  const peers = [...new Set(samples.map((s) => s.peer))];
  const rounds = Math.max(...samples.map((s) => s.round));
  const lines = [
    `### ${section.title} — ${connections} connection${connections === 1 ? '' : 's'}, ${durationS} s × ${rounds} rounds (${loader})`,
    '',
    '| peer | req/s | p50 ms | p99 ms | errors | CPU µs/req | peak RSS MiB | fake upstream ELU |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const peer of peers) {
    const mine = samples.filter((s) => s.peer === peer);
    const p50 = mine.map((s) => s.load.p50Ms);
    const p99 = mine.map((s) => s.load.p99Ms);
    const errors = mine.reduce((sum, s) => sum + s.load.errors, 0);
    const mismatched = mine.reduce((sum, s) => sum + s.mismatched, 0);
    const rss = peer === 'upstream alone' ? '–' : spread(mine.map((s) => s.peakRss / MiB));
    const label = peer === 'upstream alone' ? '*fake upstream alone (the ceiling)*' : peer;
    lines.push(
      `| ${label} | ${spread(mine.map((s) => s.load.rps))} | ${spread(p50, latencyDigits(p50))} | ${spread(p99, latencyDigits(p99))} | ${fmt(errors)}${mismatched ? ` (${mismatched} altered upstream)` : ''} | ${peer === 'upstream alone' ? '–' : spread(mine.map((s) => s.cpuUsPerRequest))} | ${rss} | ${spread(mine.map((s) => s.upstreamElu * 100))} % |`,
    );
  }
  const ratioRows: string[] = [];
  const ratio = (label: string, a: string, b: string, figure: (s: ThroughputSample) => number, digits = 2) => {
    const values = roundRatios(samples, a, b, figure);
    if (values.length > 0) ratioRows.push(`| ${label} | ${spread(values, digits)} |`);
  };
  ratio('sentry-tunnel ÷ pass-through, req/s', 'sentry-tunnel', 'pass-through', (s) => s.load.rps);
  ratio('sentry-tunnel ÷ pass-through, p99', 'sentry-tunnel', 'pass-through', (s) => s.load.p99Ms);
  ratio('sentry-tunnel ÷ pass-through, CPU per request', 'sentry-tunnel', 'pass-through', (s) => s.cpuUsPerRequest);
  ratio('sentry-tunnel ÷ pass-through, p50', 'sentry-tunnel', 'pass-through', (s) => s.load.p50Ms);
  ratio('tunnel-log-all ÷ pass-through, req/s', 'tunnel-log-all', 'pass-through', (s) => s.load.rps);
  ratio('tunnel-log-all ÷ pass-through, CPU per request', 'tunnel-log-all', 'pass-through', (s) => s.cpuUsPerRequest);
  ratio('sentry-tunnel ÷ express, req/s', 'sentry-tunnel', 'express', (s) => s.load.rps, 1);
  ratio('sentry-tunnel ÷ express, p99', 'sentry-tunnel', 'express', (s) => s.load.p99Ms);
  ratio('pass-through ÷ express, req/s', 'pass-through', 'express', (s) => s.load.rps, 1);
  ratio('nginx ÷ pass-through, req/s', 'nginx', 'pass-through', (s) => s.load.rps);
  if (ratioRows.length > 0) lines.push('', '| ratio (per round) | median (min–max) |', '|---|--:|', ...ratioRows);
  return lines.join('\n');
}

/** The issue-14 bars measured under 50-connection load with the 2 KB envelope (`figure` says which envelope otherwise). */
export function throughputTargets(samples: readonly ThroughputSample[]): Target[] {
  const targets: Target[] = [];
  const vsFloor = roundRatios(samples, 'sentry-tunnel', 'pass-through', (s) => s.load.rps);
  const vsExpress = roundRatios(samples, 'sentry-tunnel', 'express', (s) => s.load.rps);
  const p99 = roundRatios(samples, 'sentry-tunnel', 'pass-through', (s) => s.load.p99Ms);
  const logAll = roundRatios(samples, 'tunnel-log-all', 'pass-through', (s) => s.load.rps);
  const cpu = roundRatios(samples, 'sentry-tunnel', 'pass-through', (s) => s.cpuUsPerRequest);
  const cpuNote = cpu.length ? ` (CPU per request ${fmt(median(cpu), 2)} ×)` : '';
  if (vsFloor.length) targets.push({ figure: '2 KB, 50 connections: req/s vs the floor', target: '≥ 0.9 ×', measured: `${fmt(median(vsFloor), 2)} ×${cpuNote}`, holds: median(vsFloor) >= 0.9 });
  // No Node tunnel can be faster than the floor, so its own ratio to Express bounds this one.
  const floorVsExpress = roundRatios(samples, 'pass-through', 'express', (s) => s.load.rps);
  const bound = floorVsExpress.length ? ` (the floor itself: ${fmt(median(floorVsExpress), 1)} ×)` : '';
  if (vsExpress.length) targets.push({ figure: '2 KB req/s vs Express', target: '≥ 10 ×', measured: `${fmt(median(vsExpress), 1)} ×${bound}`, holds: median(vsExpress) >= 10 });
  if (p99.length) targets.push({ figure: '2 KB, 50 connections: p99 vs the floor', target: '≤ 1.3 ×', measured: `${fmt(median(p99), 2)} ×`, holds: median(p99) <= 1.3 });
  if (logAll.length) targets.push({ figure: '2 KB, `log.requests: "all"`: req/s vs the floor', target: '≥ 0.8 ×', measured: `${fmt(median(logAll), 2)} ×`, holds: median(logAll) >= 0.8 });
  const rss = (peer: string) => median(samples.filter((s) => s.peer === peer).map((s) => s.peakRss / MiB));
  const extra = rss('sentry-tunnel') - rss('pass-through');
  if (Number.isFinite(extra)) targets.push({ figure: '2 KB, 50 connections: peak RSS vs the floor', target: '≤ floor + 20 MiB', measured: `${extra >= 0 ? '+' : ''}${fmt(extra, 1)} MiB`, holds: extra <= 20 });
  return targets;
}

/** 20 KB at 50 connections: req/s ≥ 0.9 × the floor. */
export function transactionTargets(samples: readonly ThroughputSample[]): Target[] {
  const vsFloor = roundRatios(samples, 'sentry-tunnel', 'pass-through', (s) => s.load.rps);
  if (!vsFloor.length) return [];
  return [{ figure: '20 KB transaction, 50 connections: req/s vs the floor', target: '≥ 0.9 ×', measured: `${fmt(median(vsFloor), 2)} ×`, holds: median(vsFloor) >= 0.9 }];
}

/** 2 KB on one connection: p50 ≤ 1.2 × the floor's. */
export function oneConnectionTargets(samples: readonly ThroughputSample[]): Target[] {
  const p50 = roundRatios(samples, 'sentry-tunnel', 'pass-through', (s) => s.load.p50Ms);
  if (!p50.length) return [];
  return [{ figure: '2 KB, 1 connection: p50 vs the floor', target: '≤ 1.2 ×', measured: `${fmt(median(p50), 2)} ×`, holds: median(p50) <= 1.2 }];
}

export interface FloodSample {
  readonly round: number;
  /**
   * `forward` is the floor forwarding 2 KB envelopes, `floor-403` the floor refusing a foreign DSN (the
   * least a refusal after the body costs: what the 403 bar can be read against); the others are
   * sentry-tunnel refusing.
   */
  readonly kind: 'forward' | 'floor-403' | '403' | '429';
  readonly load: LoadResult;
  readonly cpuUsPerRequest: number;
  /** Answers whose status was the expected one (all of them for the floor's 200s). */
  readonly expected: boolean;
}

const FLOOD_LABELS: Record<FloodSample['kind'], string> = {
  forward: 'the floor, forwarding (200)',
  'floor-403': 'the floor, foreign DSN (403): the least a refusal costs',
  '403': 'sentry-tunnel, foreign DSN (403)',
  '429': 'sentry-tunnel, over the per-client budget (429)',
};

export function floodTable(samples: readonly FloodSample[], connections: number, durationS: number, loader: string): string {
  const rounds = Math.max(...samples.map((s) => s.round));
  const lines = [
    `### Refusal floods — 2 KB envelopes, ${connections} connections, ${durationS} s × ${rounds} rounds (${loader})`,
    '',
    '| peer, answer | req/s | p99 ms | CPU µs/req | ÷ the floor forwarding, req/s (per round) | answers as expected |',
    '|---|--:|--:|--:|--:|---|',
  ];
  for (const kind of ['forward', 'floor-403', '403', '429'] as const) {
    const mine = samples.filter((s) => s.kind === kind);
    if (!mine.length) continue;
    const ratios = kind === 'forward' ? [] : floodRatios(samples, kind);
    const p99 = mine.map((s) => s.load.p99Ms);
    lines.push(
      `| ${FLOOD_LABELS[kind]} | ${spread(mine.map((s) => s.load.rps))} | ${spread(p99, latencyDigits(p99))} | ${spread(mine.map((s) => s.cpuUsPerRequest))} | ${kind === 'forward' ? '1' : spread(ratios, 2)} | ${mine.every((s) => s.expected) ? 'yes' : '**no**'} |`,
    );
  }
  return lines.join('\n');
}

function floodRatios(samples: readonly FloodSample[], kind: FloodSample['kind']): number[] {
  const ratios: number[] = [];
  for (const sample of samples.filter((s) => s.kind === kind)) {
    const floor = samples.find((s) => s.kind === 'forward' && s.round === sample.round);
    if (floor && floor.load.rps > 0) ratios.push(sample.load.rps / floor.load.rps);
  }
  return ratios;
}

export function floodTargets(samples: readonly FloodSample[]): Target[] {
  const least = floodRatios(samples, 'floor-403');
  // The floor's own refusal says what this machine allows: when it is under 1.5 ×, no tunnel can be over.
  const leastNote = least.length ? ` (the floor's own 403: ${fmt(median(least), 2)} ×)` : '';
  return (['403', '429'] as const).flatMap((kind) => {
    const ratios = floodRatios(samples, kind);
    if (!ratios.length) return [];
    const expected = samples.filter((s) => s.kind === kind).every((s) => s.expected);
    return [
      {
        figure: `flood answered ${kind} vs the floor's forwarding rate`,
        target: '≥ 1.5 ×',
        measured: `${fmt(median(ratios), 2)} ×${expected ? '' : ' (not all answers were ' + kind + ')'}${kind === '403' ? leastNote : ''}`,
        holds: expected && median(ratios) >= 1.5,
      },
    ];
  });
}

export function bigTable(results: readonly BigResult[]): string {
  const lines = [
    '### Big envelopes — sequential on one connection',
    '',
    '| envelope | peer | answers | time ms | arrived intact | peak RSS growth over idle MiB |',
    '|---|---|---|--:|---|--:|',
  ];
  for (const r of results) {
    const answers = [...new Set(r.outcomes.map(String))].join(', ');
    lines.push(`| ${r.envelope} (${fmt(r.bytes)} B) | ${r.peer} | ${answers} | ${spread(r.timesMs)} | ${r.intact ? 'yes' : 'no'} | ${fmt((r.peakRss - r.idleRss) / MiB, 1)} |`);
  }
  return lines.join('\n');
}

export function bigTargets(results: readonly BigResult[]): Target[] {
  const r = results.find((x) => x.peer === 'sentry-tunnel' && x.bytes >= 50 * MiB);
  if (!r) return [];
  const growth = (r.peakRss - r.idleRss) / MiB;
  return [
    {
      figure: '50 MiB attachment envelope',
      target: 'intact; peak RSS growth ≤ 32 MiB',
      measured: `${r.intact ? 'intact' : 'NOT intact'}; +${fmt(growth, 1)} MiB`,
      holds: r.intact && growth <= 32,
    },
  ];
}

export function soakTable(soak: SoakResult): string {
  const lines = [
    `### Soak — sentry-tunnel, 2 KB envelopes, two runs of ${soak.durationS} s`,
    '',
    `Idle RSS before: ${fmt(soak.idleRss / MiB, 1)} MiB.`,
    '',
    '| run | req/s | requests | errors | RSS after (idle) MiB |',
    '|---|--:|--:|--:|--:|',
  ];
  soak.runs.forEach((run, i) => lines.push(`| ${i + 1} | ${fmt(run.load.rps)} | ${fmt(run.load.requests)} | ${fmt(run.load.errors)} | ${fmt(run.rssAfter / MiB, 1)} |`));
  return lines.join('\n');
}

export function soakTargets(soak: SoakResult): Target[] {
  const [first, second] = soak.runs;
  if (!first || !second) return [];
  const change = (second.rssAfter - first.rssAfter) / first.rssAfter;
  return [{ figure: `soak ${soak.durationS} s × 2, RSS after run 2 vs run 1`, target: 'within 10 %', measured: `${change >= 0 ? '+' : ''}${fmt(change * 100, 1)} %`, holds: Math.abs(change) <= 0.1 }];
}

export function startupTable(results: readonly StartupResult[]): string {
  const lines = ['### Start-up — wall time', '', '| figure | ms, median (min–max) |', '|---|--:|'];
  for (const r of results) lines.push(`| ${r.label} | ${spread(r.timesMs)} |`);
  return lines.join('\n');
}

export function startupTargets(results: readonly StartupResult[]): Target[] {
  return results.map((r) => {
    const limit = r.label.includes('serve') ? 500 : 250;
    const value = median(r.timesMs);
    return { figure: r.label, target: `≤ ${limit} ms`, measured: `${fmt(value)} ms`, holds: value <= limit };
  });
}

export function targetsTable(targets: readonly Target[]): string {
  const lines = ['### Targets (issues 9 and 14; every ratio is against the floor, `pass-through`)', '', '| figure | target | measured (median) | |', '|---|---|--:|---|'];
  for (const t of targets) lines.push(`| ${t.figure} | ${t.target} | ${t.measured} | ${t.holds ? 'holds' : '**MISSED**'} |`);
  return lines.join('\n');
}
