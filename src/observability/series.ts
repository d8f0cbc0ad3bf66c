// Counters and histograms whose per-request update is a few Map hits and an add. prom-client's own
// metrics hash and validate the label object on every inc()/observe(), its labels() children too
// (they only curry the labels), which cost more per forward than the rest of the metrics together
// (bench:ab, issue 14). These keep plain numbers per label combination and hand them to prom-client's
// Registry as a metric of its own (name, help, type, get()), which renders them at scrape time in
// exactly the format of prom-client's Counter and Histogram.
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;
type LabelValue = string | number;

interface MetricValue {
  readonly value: number;
  readonly labels: Labels;
  readonly sharedLabels?: Labels;
  readonly metricName?: string;
}

/** What prom-client's Registry reads of a metric (lib/registry.js: registerMetric, getMetricsAsString). */
interface RegistryMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: 'sum' }>;
}

/**
 * Series by label values, found through one Map per label (no key string is built per update). The
 * label objects are made once per combination, in `labelNames` order (the order they are rendered in).
 */
class SeriesTable<S> {
  readonly #root = new Map<LabelValue, unknown>();
  readonly #all: { labels: Labels; series: S }[] = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly create: () => S,
  ) {}

  get(values: readonly LabelValue[]): S {
    let level: Map<LabelValue, unknown> = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const value = values[i] as LabelValue;
      let next = level.get(value) as Map<LabelValue, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const key = values[last] as LabelValue;
    let series = level.get(key) as S | undefined;
    if (series === undefined) {
      series = this.create();
      level.set(key, series);
      const labels: Labels = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = String(values[i]);
      });
      this.#all.push({ labels, series });
    }
    return series;
  }

  entries(): readonly { labels: Labels; series: S }[] {
    return this.#all;
  }
}

interface Count {
  value: number;
}

export class CounterSeries implements RegistryMetric {
  readonly type = 'counter' as const;
  readonly aggregator = 'sum' as const;
  readonly #table: SeriesTable<Count>;

  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
    registry: Registry,
  ) {
    if (labelNames.length === 0) throw new Error(`${name}: a counter series needs at least one label`);
    this.#table = new SeriesTable(labelNames, () => ({ value: 0 }));
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** Adds one to the series of these label values (in labelNames order). */
  inc(...values: LabelValue[]): void {
    this.#table.get(values).value++;
  }

  async get(): ReturnType<RegistryMetric['get']> {
    const values = this.#table.entries().map(({ labels, series }) => ({ value: series.value, labels }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

interface Buckets {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class HistogramSeries implements RegistryMetric {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #bounds: readonly number[];
  readonly #table: SeriesTable<Buckets> | undefined;
  /** The one series of a histogram without labels, present from the start (as prom-client's is). */
  readonly #single: Buckets | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
    bounds: readonly number[],
    registry: Registry,
  ) {
    this.#bounds = bounds;
    const create = (): Buckets => ({ counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 });
    if (labelNames.length === 0) this.#single = create();
    else this.#table = new SeriesTable(labelNames, create);
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** Records `value` in the series of these label values (none for a histogram without labels). */
  observe(value: number, ...values: LabelValue[]): void {
    const series = this.#single ?? (this.#table as SeriesTable<Buckets>).get(values);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    series.counts[i] = (series.counts[i] as number) + 1;
    series.sum += value;
    series.count++;
  }

  async get(): ReturnType<RegistryMetric['get']> {
    const values: MetricValue[] = [];
    const bucketName = `${this.name}_bucket`;
    const all = this.#single ? [{ labels: {}, series: this.#single }] : (this.#table as SeriesTable<Buckets>).entries();
    for (const { labels, series } of all) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += series.counts[i] as number;
        values.push({ value: cumulative, labels: { le: String(bound) }, sharedLabels: labels, metricName: bucketName });
      });
      values.push({ value: series.count, labels: { le: '+Inf' }, sharedLabels: labels, metricName: bucketName });
      values.push({ value: series.sum, labels: {}, sharedLabels: labels, metricName: `${this.name}_sum` });
      values.push({ value: series.count, labels: {}, sharedLabels: labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
