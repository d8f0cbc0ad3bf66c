// The Markdown report: medians with min–max over rounds, the ratios against the pass-through and the
// Express handler (per round, then the median), big-envelope and soak figures, start-up timings, and
// each target of issue 9 marked as holding or missed.
import type { BigResult } from './big.js';
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
    `### ${section.title} — ${connections} connections, ${durationS} s × ${rounds} rounds (${loader})`,
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
  ratio('sentry-tunnel ÷ express, req/s', 'sentry-tunnel', 'express', (s) => s.load.rps, 1);
  ratio('sentry-tunnel ÷ express, p99', 'sentry-tunnel', 'express', (s) => s.load.p99Ms);
  ratio('pass-through ÷ express, req/s', 'pass-through', 'express', (s) => s.load.rps, 1);
  ratio('nginx ÷ pass-through, req/s', 'nginx', 'pass-through', (s) => s.load.rps);
  if (ratioRows.length > 0) lines.push('', '| ratio (per round) | median (min–max) |', '|---|--:|', ...ratioRows);
  return lines.join('\n');
}

export function throughputTargets(samples: readonly ThroughputSample[]): Target[] {
  const targets: Target[] = [];
  const vsFloor = roundRatios(samples, 'sentry-tunnel', 'pass-through', (s) => s.load.rps);
  const vsExpress = roundRatios(samples, 'sentry-tunnel', 'express', (s) => s.load.rps);
  const p99 = roundRatios(samples, 'sentry-tunnel', 'pass-through', (s) => s.load.p99Ms);
  if (vsFloor.length) targets.push({ figure: '2 KB req/s vs pass-through', target: '≥ 0.9 ×', measured: `${fmt(median(vsFloor), 2)} ×`, holds: median(vsFloor) >= 0.9 });
  // No Node tunnel can be faster than the pass-through, so its own ratio to Express bounds this one.
  const floorVsExpress = roundRatios(samples, 'pass-through', 'express', (s) => s.load.rps);
  const bound = floorVsExpress.length ? ` (pass-through itself: ${fmt(median(floorVsExpress), 1)} ×)` : '';
  if (vsExpress.length) targets.push({ figure: '2 KB req/s vs Express', target: '≥ 10 ×', measured: `${fmt(median(vsExpress), 1)} ×${bound}`, holds: median(vsExpress) >= 10 });
  if (p99.length) targets.push({ figure: '2 KB p99 vs pass-through', target: '≤ 1.3 ×', measured: `${fmt(median(p99), 2)} ×`, holds: median(p99) <= 1.3 });
  return targets;
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
  const lines = ['### Targets (issue 9)', '', '| figure | target | measured (median) | |', '|---|---|--:|---|'];
  for (const t of targets) lines.push(`| ${t.figure} | ${t.target} | ${t.measured} | ${t.holds ? 'holds' : '**MISSED**'} |`);
  return lines.join('\n');
}
