// Scrapes a Prometheus endpoint and reads the text exposition into `name{labels}` → value, for exact assertions.

export interface Scrape {
  readonly status: number;
  readonly contentType: string | null;
  readonly text: string;
  /** Samples by series: `name` or `name{a="x",b="y"}` with labels as exposed (prom-client keeps declaration order). */
  readonly samples: ReadonlyMap<string, number>;
  /** The value of a series, or undefined when it is not exposed. */
  value(series: string): number | undefined;
  /** Every series of one metric name. */
  series(name: string): string[];
}

export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  const text = await response.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text,
    samples,
    value: (series) => samples.get(series),
    series: (name) => [...samples.keys()].filter((key) => key === name || key.startsWith(`${name}{`)),
  };
}
