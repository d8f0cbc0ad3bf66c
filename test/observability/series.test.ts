import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CounterSeries, HistogramSeries } from '../../src/observability/series.js';

const BOUNDS = [1, 10, 100];

describe('CounterSeries and HistogramSeries', () => {
  it('render exactly what prom-client renders for the same updates', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const counter = new CounterSeries('requests_total', 'Requests.', ['project', 'status'], ours);
    const labelled = new HistogramSeries('duration_seconds', 'Durations.', ['project'], BOUNDS, ours);
    const plain = new HistogramSeries('bytes', 'Sizes.', [], BOUNDS, ours);
    const promCounter = new Counter({ name: 'requests_total', help: 'Requests.', labelNames: ['project', 'status'], registers: [theirs] });
    const promLabelled = new Histogram({ name: 'duration_seconds', help: 'Durations.', labelNames: ['project'], buckets: BOUNDS, registers: [theirs] });
    const promPlain = new Histogram({ name: 'bytes', help: 'Sizes.', buckets: BOUNDS, registers: [theirs] });

    // Before any update: the unlabelled histogram already has its one series of zeros, the others none.
    expect(await ours.metrics()).toBe(await theirs.metrics());

    for (const [project, status] of [['web', 200], ['web', 200], ['web', 429], ['admin', 200]] as const) {
      counter.inc(project, status);
      promCounter.inc({ project, status: String(status) });
    }
    // Values on a bound belong to that bucket (le = "less or equal"); 1000 only to +Inf.
    for (const [project, value] of [['web', 0.5], ['web', 1], ['web', 10], ['admin', 1000], ['web', 99.5]] as const) {
      labelled.observe(value, project);
      promLabelled.observe({ project }, value);
      plain.observe(value);
      promPlain.observe(value);
    }
    const rendered = await ours.metrics();
    expect(rendered).toBe(await theirs.metrics());
    expect(rendered).toContain('requests_total{project="web",status="200"} 2');
    expect(rendered).toContain('duration_seconds_bucket{le="1",project="web"} 2');
    expect(rendered).toContain('bytes_bucket{le="100"} 4');
    expect(rendered).toContain('bytes_bucket{le="+Inf"} 5');
  });

  it('refuses a counter without labels (its series would not exist before the first update, unlike prom-client\'s)', () => {
    expect(() => new CounterSeries('x_total', 'X.', [], new Registry())).toThrow(/at least one label/);
  });
});
