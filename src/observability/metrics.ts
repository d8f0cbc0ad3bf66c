// Prometheus metrics (prom-client): what flowed, what was turned away and why, how Sentry answered and
// how fast, and what is waiting. Fed from the one request record each request ends with, plus a
// Forward wrapper around the real upstream call; labels stay low-cardinality (configured project names,
// statuses, catalogue codes, clamped item types and categories — never addresses or DSNs).
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { RequestRecord } from '../core/exchange.js';
import type { Lifecycle, RequestObserver } from '../core/pipeline.js';
import type { Project } from '../core/projects.js';
import type { OutboundEnvelope, UpstreamObserver } from '../upstream/upstream.js';
import { CounterSeries, HistogramSeries } from './series.js';

/** The spool's size, as the spool reports it. */
export interface SpoolStats {
  stats(): { envelopes: number; bytes: number };
}

/** Envelopes waiting for a rate-limit slot, as the limiter reports it. */
export interface QueueStats {
  queued(): number;
}

export type SelfMonitoringOutcome = 'sent' | 'rate_limited' | 'failed';

const PREFIX = 'sentry_tunnel_';
const UNKNOWN_PROJECT = 'unknown';
/** Wire sizes from a tiny error event to a large replay or attachment. */
const BYTE_BUCKETS = [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864];
const SECOND_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const UPSTREAM_ERROR_CODES = new Set(['upstream_timeout', 'upstream_unavailable', 'upstream_redirect']);

// Item types and rate-limit categories come from clients and from Sentry; anything outside these lists is
// counted as "other" so a hostile client cannot mint label values.
// https://develop.sentry.dev/sdk/data-model/envelope-items/ — https://develop.sentry.dev/sdk/expected-features/rate-limiting/
const ITEM_TYPES = new Set([
  'event', 'transaction', 'attachment', 'session', 'sessions', 'client_report', 'user_report', 'feedback', 'replay_event',
  'replay_recording', 'replay_video', 'profile', 'profile_chunk', 'check_in', 'span', 'otel_span', 'log', 'otel_log',
  'trace_metric', 'statsd', 'metric_meta', 'security', 'raw_security', 'nel', 'unreal_report', 'form_data',
]);
const CATEGORIES = new Set([
  'default', 'error', 'transaction', 'security', 'attachment', 'attachment_item', 'session', 'internal', 'profile',
  'profile_chunk', 'profile_chunk_ui', 'replay', 'monitor', 'span', 'log_item', 'log_byte', 'feedback', 'user_report_v2',
  'trace_metric', 'metric_bucket',
]);

type PromClient = typeof import('prom-client');

let processRegistry: Promise<Registry> | undefined;

/** Node process metrics are process-wide facts: collected once, shared by every tunnel in the process. */
function processMetrics(prom: PromClient): Promise<Registry> {
  processRegistry ??= Promise.resolve().then(() => {
    const registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    return registry;
  });
  return processRegistry;
}

/** The Prometheus exposition, as the daemon serves it at metrics.path. */
export interface MetricsEndpoint {
  readonly path: string;
  readonly contentType: string;
  render(): Promise<string>;
}

export class TunnelMetrics implements RequestObserver, MetricsEndpoint {
  readonly path: string;
  readonly contentType: string;
  readonly #prom: PromClient;
  readonly #registry: Registry;
  readonly #process: Registry;
  readonly #requests: CounterSeries;
  readonly #rejections: CounterSeries;
  readonly #routes: CounterSeries;
  readonly #envelopeBytes: HistogramSeries;
  readonly #upstreamDuration: HistogramSeries;
  readonly #upstreamErrors: CounterSeries;
  readonly #rateLimited: CounterSeries;
  readonly #itemsDropped: CounterSeries;
  readonly #selfMonitoring: CounterSeries;
  /** Scrapes in progress: they pass through the lifecycle too, but are not traffic. */
  #scrapes = 0;

  private constructor(prom: PromClient, processRegistry: Registry, options: Config['metrics'], lifecycle: Lifecycle) {
    this.#prom = prom;
    this.#process = processRegistry;
    this.path = options.path;
    const registry = new prom.Registry();
    this.#registry = registry;
    this.contentType = registry.contentType;
    const counter = (name: string, labelNames: readonly string[], help: string) => new CounterSeries(PREFIX + name, help, labelNames, registry);
    const histogram = (name: string, labelNames: readonly string[], buckets: readonly number[], help: string) =>
      new HistogramSeries(PREFIX + name, help, labelNames, buckets, registry);
    this.#requests = counter(
      'requests_total',
      ['project', 'status', 'outcome'],
      'Requests on the tunnel path, by configured project ("unknown" when none was resolved), HTTP status and outcome.',
    );
    this.#routes = counter(
      'route_requests_total',
      ['route'],
      'Requests on each configured server.path entry (its own path and {path}/{project}), to see when old paths fall silent.',
    );
    this.#rejections = counter('rejections_total', ['code'], 'Answers the tunnel wrote itself with an error code (4xx and 5xx), by code.');
    this.#envelopeBytes = histogram('envelope_bytes', [], BYTE_BUCKETS, 'Envelope size on the wire (as received, before decompression), in bytes.');
    this.#upstreamDuration = histogram(
      'upstream_duration_seconds',
      ['project', 'status'],
      SECOND_BUCKETS,
      'Time from sending an envelope to Sentry to its answer, by project and Sentry\'s status ("error" when none came).',
    );
    this.#upstreamErrors = counter(
      'upstream_errors_total',
      ['code'],
      'Calls to Sentry that got no usable answer, by code: upstream_timeout, upstream_unavailable, upstream_redirect.',
    );
    this.#rateLimited = counter(
      'rate_limited_total',
      ['reason', 'category'],
      'Envelopes turned away by a rate limit, by reason (client, project, sentry, overloaded) and data category.',
    );
    this.#itemsDropped = counter('items_dropped_total', ['reason', 'type'], 'Envelope items removed by processing rules, by reason (the rule) and item type.');
    this.#selfMonitoring = counter(
      'self_monitoring_events_total',
      ['outcome'],
      'The tunnel\'s own errors reported to the self-monitoring project, by outcome: sent, rate_limited, failed.',
    );
    const metrics = this;
    new prom.Gauge({
      name: `${PREFIX}in_flight`,
      help: 'Requests being handled right now (metrics scrapes excluded).',
      registers: [registry],
      collect() {
        this.set(Math.max(0, lifecycle.inFlight - metrics.#scrapes));
      },
    });
  }

  /** Loads prom-client only when metrics are on (it costs start-up time). */
  static async create(options: Config['metrics'], lifecycle: Lifecycle): Promise<TunnelMetrics> {
    const prom = await import('prom-client');
    return new TunnelMetrics(prom, await processMetrics(prom), options, lifecycle);
  }

  /** Called once per request, when it has ended. */
  observe(record: RequestRecord): void {
    const project = record.project ?? UNKNOWN_PROJECT;
    const outcome = record.outcome ?? 'none';
    this.#requests.inc(project, record.status, outcome);
    // The configured paths are few, so `route` stays low-cardinality.
    if (record.route !== undefined) this.#routes.inc(record.route);
    if (record.bytesIn > 0) this.#envelopeBytes.observe(record.bytesIn);
    if (record.code !== undefined) this.rejected(record.code);
    if (record.rateLimit !== undefined) {
      const category = record.rateLimit.category;
      this.#rateLimited.inc(record.rateLimit.reason, category === undefined ? '' : clamp(CATEGORIES, category));
    }
    if (record.dropped !== undefined) {
      for (const item of record.dropped) this.#itemsDropped.inc(item.reason, clamp(ITEM_TYPES, item.type));
    }
  }

  /** Counts an error answer; also called for malformed HTTP, which is answered before the pipeline. */
  rejected(code: string): void {
    this.#rejections.inc(code);
  }

  /** Times the real calls to Sentry (innermost, so retries count once each) and counts transport failures. */
  upstreamObserver(projects: Iterable<Project>): UpstreamObserver {
    const byTarget = new Map<object, string>();
    const byUrl = new Map<string, string>();
    for (const project of projects) {
      byTarget.set(project.target, project.name);
      byUrl.set(project.target.origin + project.target.path, project.name);
    }
    const projectOf = (envelope: OutboundEnvelope) =>
      byTarget.get(envelope.target) ?? byUrl.get(envelope.target.origin + envelope.target.path) ?? UNKNOWN_PROJECT;
    return {
      answered: (envelope, status, startedAt) => this.#observeUpstream(projectOf(envelope), status, startedAt),
      failed: (envelope, error, clientFailed, startedAt) => {
        // A body the client broke off (or that hit a limit) is the client's failure, not Sentry's.
        if (!UPSTREAM_ERROR_CODES.has(error.code) || clientFailed) return;
        this.#observeUpstream(projectOf(envelope), 'error', startedAt);
        this.#upstreamErrors.inc(error.code);
      },
    };
  }

  #observeUpstream(project: string, status: number | 'error', started: number): void {
    this.#upstreamDuration.observe((performance.now() - started) / 1000, project, status);
  }

  selfMonitoringEvent(outcome: SelfMonitoringOutcome): void {
    this.#selfMonitoring.inc(outcome);
  }

  /** sentry_tunnel_spool_envelopes and sentry_tunnel_spool_bytes, read at scrape time. */
  watchSpool(spool: SpoolStats): void {
    const registers = [this.#registry];
    new this.#prom.Gauge({
      name: `${PREFIX}spool_envelopes`,
      help: 'Envelopes waiting in the spool.',
      registers,
      collect() {
        this.set(spool.stats().envelopes);
      },
    });
    new this.#prom.Gauge({
      name: `${PREFIX}spool_bytes`,
      help: 'Bytes of envelopes waiting in the spool.',
      registers,
      collect() {
        this.set(spool.stats().bytes);
      },
    });
  }

  /** sentry_tunnel_queue_length, read at scrape time. */
  watchQueue(queue: QueueStats): void {
    new this.#prom.Gauge({
      name: `${PREFIX}queue_length`,
      help: 'Envelopes waiting for a rate-limit slot.',
      registers: [this.#registry],
      collect() {
        this.set(queue.queued());
      },
    });
  }

  /** The tunnel's own metrics only, for an app that serves its own process metrics. */
  renderOwn(): Promise<string> {
    return this.#registry.metrics();
  }

  /** The Prometheus text exposition: the tunnel's metrics, then the Node process metrics. */
  async render(): Promise<string> {
    this.#scrapes++;
    try {
      const [own, process] = await Promise.all([this.#registry.metrics(), this.#process.metrics()]);
      return `${own}\n${process}`;
    } finally {
      this.#scrapes--;
    }
  }
}

function clamp(known: ReadonlySet<string>, value: string): string {
  return known.has(value) ? value : 'other';
}
