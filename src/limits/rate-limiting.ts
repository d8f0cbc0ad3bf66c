// The rate-limit stages of the pipeline: the per-client budget (before the body is read), Sentry's
// announced limits and the per-project budget (once the project is known), and around the forwarder
// the upstream concurrency gate and the bookkeeping of every reply's limits. With rateLimit.redis the
// budgets and Sentry's limits are shared by every replica.
import { Buffer } from 'node:buffer';
import ipaddr from 'ipaddr.js';
import type { ContentEncoding, EnvelopeHead } from '../core/body.js';
import { decodeBody } from '../core/body.js';
import type { Config } from '../config/schema.js';
import { parseEnvelope } from '../core/envelope.js';
import { TunnelError } from '../errors.js';
import { type Admission, type GateEntry, MAX_KEYS_PER_WINDOW, UpstreamGate, WindowLimiter } from './limiter.js';
import type { Logger } from '../observability/logger.js';
import type { RequestRecord } from '../core/exchange.js';
import type { Project, ProjectRegistry } from '../core/projects.js';
import { type RateLimits, SentryLimitCache, announcesLimits, formatRateLimits } from './rate-limits.js';
import { RedisLink } from './redis.js';
import type { OutboundEnvelope, ReplySink, Send, UpstreamReply } from '../upstream/upstream.js';

export class RateLimiting {
  readonly #perClient: WindowLimiter | undefined;
  readonly #perProject = new Map<string, WindowLimiter>();
  readonly #gate: UpstreamGate;
  readonly #sentry = new SentryLimitCache();
  readonly #maxDecodedBytes: number;
  readonly #redis: RedisLink | undefined;
  readonly #sharing: SentryLimitSharing | undefined;
  readonly #logger: Logger;

  private constructor(config: Config, projects: ProjectRegistry, logger: Logger, redis: RedisLink | undefined) {
    const { rateLimit } = config;
    this.#logger = logger;
    this.#redis = redis;
    this.#maxDecodedBytes = config.limits.maxDecodedBytes;
    const prefix = rateLimit.redis?.keyPrefix ?? 'sentry-tunnel';
    const timeoutMs = rateLimit.redis?.timeoutMs;
    if (rateLimit.perClient) {
      this.#perClient = new WindowLimiter({
        id: `${prefix}:client`,
        ...rateLimit.perClient,
        shared: redis,
        timeoutMs,
        onOverflow: () =>
          logger.warn(
            { maxClients: MAX_KEYS_PER_WINDOW },
            'rate limit: more client addresses in this window than the per-client limit tracks; the others share one budget until the window ends',
          ),
      });
    }
    for (const project of projects.byName.values()) {
      const budget = config.projects[project.name]?.rateLimit;
      if (budget) this.#perProject.set(project.name, new WindowLimiter({ id: `${prefix}:project`, ...budget, shared: redis, timeoutMs }));
    }
    this.#gate = new UpstreamGate(rateLimit.maxConcurrent, rateLimit.maxQueued);
    if (redis) {
      redis.onConnect(() => {
        this.#perClient?.resetShared();
        for (const budget of this.#perProject.values()) budget.resetShared();
      });
      this.#sharing = new SentryLimitSharing(redis, this.#sentry, [...projects.byName.keys()], prefix, logger);
    }
  }

  static async create(config: Config, projects: ProjectRegistry, logger: Logger): Promise<RateLimiting> {
    const redisConfig = config.rateLimit.redis;
    const redis = redisConfig ? await RedisLink.connect(redisConfig, logger, redisConfig.timeoutMs) : undefined;
    const rateLimiting = new RateLimiting(config, projects, logger, redis);
    // A replica that starts while Sentry is limiting a project knows it before its first request.
    if (redis?.usable()) await rateLimiting.#sharing?.loaded;
    return rateLimiting;
  }

  /**
   * The client's budget; runs before the body is read, so a refused client costs nothing more. The 429
   * to answer, or undefined; a promise only while Redis decides (refusals are values, not throws: a
   * flood of them should not pay for unwinding).
   */
  checkClient(clientIp: string, record: RequestRecord): Refusal | Promise<Refusal> {
    if (!this.#perClient) return undefined;
    const admission = this.#perClient.take(clientKey(clientIp));
    return admission instanceof Promise ? admission.then((taken) => clientRefusal(taken, record)) : clientRefusal(admission, record);
  }

  /** Sentry's limits for the envelope's items, then the project's budget (which limited envelopes do not use up). */
  checkProject(project: Project, head: EnvelopeHead, encoding: ContentEncoding, record: RequestRecord): Refusal | Promise<Refusal> {
    const limits = this.#sentry.active(project.name);
    if (!limits) return this.#checkBudget(project, record);
    return this.#checkSentryLimits(project, limits, head, encoding, record).then((refused) => refused ?? this.#checkBudget(project, record));
  }

  #checkBudget(project: Project, record: RequestRecord): Refusal | Promise<Refusal> {
    const budget = this.#perProject.get(project.name);
    if (!budget) return undefined;
    const admission = budget.take(project.name);
    return admission instanceof Promise ? admission.then((taken) => projectRefusal(project, taken, record)) : projectRefusal(project, admission, record);
  }

  /** Sends at most rateLimit.maxConcurrent envelopes at once and learns the limits in every reply. */
  wrapSend(send: Send): Send {
    const gate = this.#gate;
    const learn = (project: string, reply: UpstreamReply) => this.#learn(project, reply);
    return (envelope, sink) => {
      const refused = gate.enter(new GatedCall(gate, send, learn, envelope, sink));
      if (refused) sink.failed(refused);
    };
  }

  async #learn(project: string, reply: UpstreamReply): Promise<void> {
    try {
      const changed = await this.#sentry.update(project, reply);
      if (!changed) return;
      this.#logger.info({ project, rateLimits: formatRateLimits(changed, Date.now()) }, 'Sentry announced rate limits; envelopes they cover are answered 429 here until they end');
      this.#sharing?.publish(project, changed);
    } catch (error) {
      this.#logger.error({ err: error, project }, 'could not record Sentry rate limits');
    }
  }

  async close(): Promise<void> {
    this.#perClient?.close();
    for (const budget of this.#perProject.values()) budget.close();
    await this.#redis?.close();
  }

  async #checkSentryLimits(project: Project, limits: RateLimits, head: EnvelopeHead, encoding: ContentEncoding, record: RequestRecord): Promise<Refusal> {
    const verdict = await this.#sentry.judge(limits, () => this.#itemTypes(head, encoding));
    if (!verdict.limited) return undefined;
    const what = verdict.categories ? verdict.categories.join(', ') : 'all';
    // One category per refusal (the first item's, usually the event) keeps the metric's labels few.
    const category = verdict.categories?.[0];
    return refuse(record, category === undefined ? { reason: 'sentry' } : { reason: 'sentry', category }, verdict.retryAfterMs, {
      message: `Sentry is rate-limiting ${what} data of project "${project.name}"; the tunnel holds it back until the limit ends.`,
      // The SDK reads this (not Retry-After) to back off per category, exactly as if Sentry had answered.
      headers: { 'x-sentry-rate-limits': formatRateLimits(limits, Date.now()) },
    });
  }

  /**
   * The envelope's item types, read only while the project has a Sentry limit. Streamed (large) bodies
   * are not read ahead: undefined lets them through, and Sentry, which enforces its own limits,
   * answers them. With processing rules the body is read and decoded whole anyway.
   */
  async #itemTypes(head: EnvelopeHead, encoding: ContentEncoding): Promise<string[] | undefined> {
    if (!Buffer.isBuffer(head.body)) return undefined;
    try {
      const decoded = head.decoded ?? (await decodeBody(head.body, encoding, this.#maxDecodedBytes));
      return parseEnvelope(decoded).items.map((item) => item.type);
    } catch {
      // A malformed envelope is judged as it would be without a limit (forwarded, or refused by processing).
      return undefined;
    }
  }
}

/**
 * One envelope through the gate: sent once it holds a slot, the slot given back as Sentry's reply (or
 * the failure) arrives, the reply's limits learned before the sink hears it. One object per forward,
 * in place of the promises and closures of a then() chain.
 */
class GatedCall implements GateEntry, ReplySink {
  #stamp = -1;
  #holding = false;

  constructor(
    private readonly gate: UpstreamGate,
    private readonly send: Send,
    private readonly learn: (project: string, reply: UpstreamReply) => Promise<void>,
    private readonly envelope: OutboundEnvelope,
    private readonly sink: ReplySink,
  ) {}

  start(stamp: number): void {
    this.#stamp = stamp;
    this.#holding = true;
    try {
      this.send(this.envelope, this);
    } catch (error) {
      this.failed(error);
    }
  }

  replied(reply: UpstreamReply): void {
    if (!this.#leave()) return;
    if (!announcesLimits(reply)) return this.sink.replied(reply);
    // #learn never rejects: it logs what it could not record.
    void this.learn(this.envelope.project, reply).then(() => this.sink.replied(reply));
  }

  failed(error: unknown): void {
    if (this.#leave()) this.sink.failed(error);
  }

  /** Gives the slot back; false when it was given back already (a step told its end twice). */
  #leave(): boolean {
    if (!this.#holding) return false;
    this.#holding = false;
    this.gate.leave(this.#stamp);
    return true;
  }
}

/** A check's answer: undefined to go on, or the refusal to answer with. */
export type Refusal = TunnelError | undefined;

function clientRefusal(admission: Admission, record: RequestRecord): Refusal {
  return admission.allowed ? undefined : refuse(record, { reason: 'client' }, admission.retryAfterMs);
}

function projectRefusal(project: Project, admission: Admission, record: RequestRecord): Refusal {
  if (admission.allowed) return undefined;
  return refuse(record, { reason: 'project' }, admission.retryAfterMs, { message: `Project "${project.name}" has used its envelope budget for this window.` });
}

/** A 429 that tells the client how long to wait, recorded for the request log and metrics. */
function refuse(
  record: RequestRecord,
  rateLimit: NonNullable<RequestRecord['rateLimit']>,
  retryAfterMs: number,
  options: { message?: string; headers?: Record<string, string> } = {},
): TunnelError {
  record.outcome = 'rate_limited';
  record.rateLimit = rateLimit;
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  if (options.message === undefined && options.headers === undefined) return plainRateLimited(seconds);
  return new TunnelError('rate_limited', {
    ...(options.message === undefined ? {} : { message: options.message }),
    headers: Object.assign({ 'retry-after': String(seconds) }, options.headers),
  });
}

/** The answers of a per-client refusal differ only in Retry-After: one shared error per value seen (a window has few). */
const rateLimitedBySeconds = new Map<number, TunnelError>();
const MAX_SHARED_RETRY_AFTERS = 4096;

function plainRateLimited(seconds: number): TunnelError {
  let error = rateLimitedBySeconds.get(seconds);
  if (error === undefined) {
    if (rateLimitedBySeconds.size >= MAX_SHARED_RETRY_AFTERS) rateLimitedBySeconds.clear();
    error = new TunnelError('rate_limited', { headers: { 'retry-after': String(seconds) } });
    rateLimitedBySeconds.set(seconds, error);
  }
  return error;
}

/**
 * Sentry's limits, shared: each change is published to every replica and stored (until it ends) for
 * replicas that start later or reconnect. A replica that misses a message still learns the limit from
 * Sentry's next reply to it.
 */
class SentryLimitSharing {
  readonly #redis: RedisLink;
  readonly #cache: SentryLimitCache;
  readonly #projects: readonly string[];
  readonly #prefix: string;
  readonly #logger: Logger;
  /** Settles once the limits stored in Redis were read after the first connect (or that failed). */
  readonly loaded: Promise<void>;

  constructor(redis: RedisLink, cache: SentryLimitCache, projects: readonly string[], prefix: string, logger: Logger) {
    this.#redis = redis;
    this.#cache = cache;
    this.#projects = projects;
    this.#prefix = prefix;
    this.#logger = logger;
    void redis.subscribe(this.#channel, (message) => this.#receive(message));
    let firstLoad: () => void = () => {};
    this.loaded = new Promise((resolve) => {
      firstLoad = resolve;
    });
    redis.onConnect(() => void this.#load().finally(firstLoad));
  }

  publish(project: string, changed: RateLimits): void {
    if (!this.#redis.usable()) return;
    const all = this.#cache.active(project) ?? changed;
    const ttl = Math.max(...Object.values(all)) - Date.now();
    if (ttl <= 0) return;
    this.#redis.client
      .multi()
      .set(this.#key(project), JSON.stringify(all), 'PX', ttl)
      .publish(this.#channel, JSON.stringify({ project, limits: changed }))
      .exec()
      .catch((error: unknown) => this.#redis.failed(error));
  }

  get #channel(): string {
    return `${this.#prefix}:sentry-limits`;
  }

  #key(project: string): string {
    return `${this.#prefix}:sentry-limits:${project}`;
  }

  #receive(message: string): void {
    try {
      const { project, limits } = JSON.parse(message) as { project?: unknown; limits?: unknown };
      if (this.#apply(project, limits)) this.#logger.debug({ project }, 'Sentry rate limits learned from another replica');
    } catch {
      this.#logger.debug({ channel: this.#channel }, 'ignored a malformed Sentry rate-limit message');
    }
  }

  async #load(): Promise<void> {
    try {
      const values = await this.#redis.client.mget(this.#projects.map((project) => this.#key(project)));
      values.forEach((value, index) => {
        if (value === null) return;
        try {
          this.#apply(this.#projects[index], JSON.parse(value));
        } catch {
          // Not a value of ours; it expires by itself.
        }
      });
    } catch (error) {
      this.#redis.failed(error);
    }
  }

  #apply(project: unknown, limits: unknown): boolean {
    if (typeof project !== 'string' || !this.#projects.includes(project) || limits === null || typeof limits !== 'object') return false;
    this.#cache.apply(project, limits as RateLimits);
    return true;
  }
}

/**
 * What the per-client budget counts by: the address, or for IPv6 its /64 network. One subscriber
 * (one home, one phone) is usually given a whole /64 and can pick any address in it, so per address
 * it could bypass the budget and fill the limiter's memory.
 */
export function clientKey(address: string): string {
  if (!address.includes(':') || !ipaddr.IPv6.isValid(address)) return address;
  const parsed = ipaddr.IPv6.parse(address);
  if (parsed.isIPv4MappedAddress()) return parsed.toIPv4Address().toString();
  return `${parsed.parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`;
}
