// The tunnel's own unexpected errors, reported to a separate Sentry project (`selfMonitoring.dsn`):
// events built with @sentry/core (loaded only when configured; @sentry/node costs >1 s of start-up),
// sent straight to Sentry with the tunnel's own upstream client — never through the tunnel's pipeline —
// at most `maxEventsPerMinute`, and not at all while Sentry says this project is rate-limited.
import { Buffer } from 'node:buffer';
import { hostname } from 'node:os';
import type { Event, Exception, RateLimits, StackParser } from '@sentry/core';
import type { Config } from '../config/schema.js';
import { type UpstreamTarget, envelopeTarget, parseDsn } from '../core/dsn.js';
import type { Logger } from './logger.js';
import type { SelfMonitoringOutcome } from './metrics.js';
import type { RequestRecord } from '../core/exchange.js';
import type { Forward } from '../upstream/upstream.js';
import { version } from '../version.js';

/** Not a configured project: self-monitoring events go straight to their own DSN. */
const SELF_MONITORING_PROJECT = '(self-monitoring)';
const SDK = { name: 'sentry-tunnel', version };
/** Error.cause chains longer than this are cut: the first links explain the failure. */
const MAX_CAUSES = 5;

type Core = typeof import('@sentry/core');

export interface SelfMonitorOptions {
  readonly logger: Logger;
  /** The undici upstream itself, not the wrapped forward: reports must not pass through limits, spool or metrics of the tunnel. */
  readonly send: Forward;
  readonly onOutcome?: (outcome: SelfMonitoringOutcome) => void;
}

export class SelfMonitor {
  readonly #core: Core;
  readonly #stackParser: StackParser;
  readonly #options: Config['selfMonitoring'];
  readonly #hooks: SelfMonitorOptions;
  readonly #target: UpstreamTarget;
  readonly #dsn: ReturnType<Core['makeDsn']>;
  readonly #refillPerMs: number;
  #tokens: number;
  #refilledAt = Date.now();
  #sentryLimits: RateLimits = {};
  #warnedFull = false;
  readonly #pending = new Set<Promise<void>>();

  private constructor(core: Core, stackParser: StackParser, options: Config['selfMonitoring'], hooks: SelfMonitorOptions) {
    this.#core = core;
    this.#stackParser = stackParser;
    this.#options = options;
    this.#hooks = hooks;
    const parsed = parseDsn(options.dsn);
    if (!parsed.ok) throw new Error(`selfMonitoring.dsn: not a valid DSN: ${parsed.reason}`);
    this.#target = envelopeTarget(parsed.dsn);
    const dsn = core.makeDsn(options.dsn);
    if (!dsn) throw new Error('selfMonitoring.dsn: not a valid DSN');
    this.#dsn = dsn;
    this.#tokens = options.maxEventsPerMinute;
    this.#refillPerMs = options.maxEventsPerMinute / 60_000;
  }

  /** Undefined when self-monitoring is off (no DSN); otherwise loads @sentry/core. */
  static async create(options: Config['selfMonitoring'], hooks: SelfMonitorOptions): Promise<SelfMonitor | undefined> {
    if (options.dsn === '') return undefined;
    const [core, server] = await Promise.all([import('@sentry/core'), import('@sentry/core/server')]);
    return new SelfMonitor(core, core.createStackParser(server.nodeStackLineParser()), options, hooks);
  }

  /** Reports `error` unless over the rate limit; never throws, never waits. */
  capture(error: unknown, record?: Pick<RequestRecord, 'reqId' | 'method' | 'path' | 'project'>): void {
    if (!this.#takeToken() || this.#core.isRateLimited(this.#sentryLimits, 'error', Date.now())) {
      this.#outcome('rate_limited');
      if (!this.#warnedFull) {
        this.#warnedFull = true;
        this.#hooks.logger.warn({ maxEventsPerMinute: this.#options.maxEventsPerMinute }, 'self-monitoring is rate-limited; dropping error reports');
      }
      return;
    }
    this.#warnedFull = false;
    let body: Buffer;
    try {
      body = this.#envelope(this.#event(error, record));
    } catch (buildError) {
      this.#hooks.logger.warn({ err: buildError }, 'self-monitoring could not build an event');
      this.#outcome('failed');
      return;
    }
    const sending = this.#send(body).finally(() => this.#pending.delete(sending));
    this.#pending.add(sending);
  }

  /** Waits for reports on their way, at most `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.#pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#pending]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  #takeToken(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.#options.maxEventsPerMinute, this.#tokens + (now - this.#refilledAt) * this.#refillPerMs);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #event(error: unknown, record: Pick<RequestRecord, 'reqId' | 'method' | 'path' | 'project'> | undefined): Event {
    const event: Event = {
      event_id: this.#core.uuid4(),
      timestamp: Date.now() / 1000,
      platform: 'node',
      level: 'error',
      logger: 'sentry-tunnel',
      server_name: hostname(),
      release: `sentry-tunnel@${version}`,
      environment: this.#options.environment,
      exception: { values: this.#exceptions(error) },
      contexts: { runtime: { name: 'node', version: process.version } },
      sdk: SDK,
    };
    if (record) {
      // Which request failed, to find its log line — never its body, headers or client address.
      event.contexts = { ...event.contexts, request_record: { reqId: record.reqId, method: record.method, path: record.path } };
      if (record.project !== undefined) event.tags = { project: record.project };
    }
    return event;
  }

  /** The error and its causes, innermost cause first, as Sentry's linked errors lists them. */
  #exceptions(error: unknown): Exception[] {
    const chain: Exception[] = [];
    let current: unknown = error;
    for (let depth = 0; current !== undefined && current !== null && depth <= MAX_CAUSES; depth++) {
      const asError = current instanceof Error ? current : new Error(String(current));
      chain.unshift(this.#core.exceptionFromError(this.#stackParser, asError));
      current = current instanceof Error ? current.cause : undefined;
    }
    const primary = chain[chain.length - 1];
    if (primary) primary.mechanism = { type: 'sentry-tunnel', handled: true };
    return chain;
  }

  #envelope(event: Event): Buffer {
    const envelope = this.#core.createEventEnvelope(event, this.#dsn, { sdk: SDK });
    const serialized = this.#core.serializeEnvelope(envelope);
    return typeof serialized === 'string' ? Buffer.from(serialized) : Buffer.from(serialized.buffer, serialized.byteOffset, serialized.byteLength);
  }

  async #send(body: Buffer): Promise<void> {
    try {
      const reply = await this.#hooks.send({
        project: SELF_MONITORING_PROJECT,
        header: {},
        target: this.#target,
        headers: { 'content-type': 'application/x-sentry-envelope', 'content-length': String(body.length), 'user-agent': `${SDK.name}/${version}` },
        body,
      });
      if (reply.status === 429 || reply.headers['x-sentry-rate-limits'] !== undefined) {
        this.#sentryLimits = this.#core.updateRateLimits(this.#sentryLimits, {
          statusCode: reply.status,
          headers: { 'x-sentry-rate-limits': reply.headers['x-sentry-rate-limits'] ?? null, 'retry-after': reply.headers['retry-after'] ?? null },
        });
      }
      if (reply.status >= 200 && reply.status < 300) this.#outcome('sent');
      else {
        this.#outcome(reply.status === 429 ? 'rate_limited' : 'failed');
        this.#hooks.logger.warn({ upstreamStatus: reply.status }, 'self-monitoring event not accepted by Sentry');
      }
    } catch (error) {
      this.#outcome('failed');
      const code = (error as { code?: unknown }).code;
      this.#hooks.logger.warn({ code, reason: error instanceof Error ? error.message : String(error) }, 'self-monitoring event could not be sent');
    }
  }

  #outcome(outcome: SelfMonitoringOutcome): void {
    this.#hooks.onOutcome?.(outcome);
  }
}
