// The link to Redis that lets replicas share limits: one ioredis client (plus Bottleneck's pub/sub
// duplicate) wrapped in a Bottleneck IORedisConnection, its health, and the one log line per outage.
// Redis trouble must never become an event outage: commands fail fast while it is away (no offline
// queue), callers fall back to in-process limits, and ioredis reconnects by itself.
import Bottleneck from 'bottleneck';
import type { Redis, RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';

type RedisConfig = NonNullable<Config['rateLimit']['redis']>;

/** What bottleneck.d.ts leaves out of IORedisConnection: `ready` is a promise there, not a method, and the pub/sub client. */
interface ConnectionInternals {
  readonly ready: Promise<unknown>;
  readonly subscriber: Redis;
}

/** Reconnect attempts back off to this interval and keep going for as long as the process runs. */
const MAX_RECONNECT_DELAY_MS = 2_000;
const CONNECT_TIMEOUT_MS = 2_000;

export class RedisLink {
  readonly connection: Bottleneck.IORedisConnection;
  /** Where Redis is, without credentials, for log lines. */
  readonly where: string;
  readonly #client: Redis;
  readonly #subscriber: Redis;
  readonly #logger: Logger;
  readonly #onConnect: (() => void)[] = [];
  #connected = false;
  #outage = false;
  #closing = false;

  private constructor(RedisClass: typeof Redis, options: RedisConfig, logger: Logger) {
    this.#logger = logger;
    const url = new URL(options.url);
    this.where = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    const clientOptions: RedisOptions = {
      // A command while disconnected fails at once instead of piling up in memory and being replayed later.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      // Never flush in-flight commands while reconnecting: some that ioredis sends itself are unhandled.
      maxRetriesPerRequest: null,
      commandTimeout: options.timeoutMs,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // On close, a socket that never connected is otherwise waited for 2 s, holding up the exit.
      disconnectTimeout: 200,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    };
    this.#client = new RedisClass(options.url, clientOptions);
    this.connection = new Bottleneck.IORedisConnection({ client: this.#client, Redis: RedisClass });
    const internals = this.connection as unknown as ConnectionInternals;
    this.#subscriber = internals.subscriber;
    // ioredis re-subscribes after a reconnect without handling the reply; a timeout there would be an
    // unhandled rejection that ends the process. The pub/sub client (a duplicate) therefore has none.
    this.#subscriber.options.commandTimeout = undefined;
    // Bottleneck unsubscribes a retired limiter without handling a failure; while Redis is away that
    // rejection would go unhandled and end the process.
    const unsubscribe = this.#subscriber.unsubscribe.bind(this.#subscriber) as (...channels: string[]) => Promise<unknown>;
    this.#subscriber.unsubscribe = ((...channels: string[]) => unsubscribe(...channels).catch(() => 0)) as Redis['unsubscribe'];
    this.connection.on('error', (error) => this.failed(error));
    void internals.ready.then(() => {
      this.#connected = true;
      this.succeeded();
      for (const listener of this.#onConnect) listener();
    });
    this.#client.on('close', () => {
      if (this.#connected && !this.#closing) this.failed(new Error('connection closed'));
    });
    this.#client.on('ready', () => {
      if (!this.#connected) return;
      this.succeeded();
      for (const listener of this.#onConnect) listener();
    });
  }

  /**
   * Connects, waiting at most `waitMs` for Redis: a tunnel whose Redis is down still starts, with
   * in-process limits, and switches to shared limits once Redis answers.
   */
  static async connect(options: RedisConfig, logger: Logger, waitMs: number): Promise<RedisLink> {
    // Loaded only when configured: ioredis costs start-up time that a single tunnel does not need.
    const { Redis: RedisClass } = await import('ioredis');
    const link = new RedisLink(RedisClass, options, logger);
    let timer: NodeJS.Timeout | undefined;
    let refused: unknown;
    const ready = await Promise.race([
      (link.connection as unknown as ConnectionInternals).ready.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), waitMs);
      }),
      // Connection refused or a wrong host: no reason to wait out waitMs.
      new Promise<false>((resolve) =>
        link.#client.once('error', (error) => {
          refused = error;
          resolve(false);
        }),
      ),
    ]);
    clearTimeout(timer);
    if (ready) logger.info({ redis: link.where }, 'connected to Redis: limits are shared with other replicas');
    else link.failed(refused ?? new Error(`no answer within ${waitMs} ms`));
    return link;
  }

  /** Whether limits should be taken from Redis right now. */
  usable(): boolean {
    return this.#connected && this.#client.status === 'ready';
  }

  /** A Redis command failed: the first failure of an outage is logged, the rest are not. */
  failed(error: unknown): void {
    if (this.#outage || this.#closing) return;
    this.#outage = true;
    const reason = error instanceof Error ? error.message : String(error);
    this.#logger.warn({ redis: this.where, reason }, 'Redis unavailable: limits are counted in this process only until it is back');
  }

  /** A Redis command succeeded (or the connection is back): ends an outage. */
  succeeded(): void {
    if (!this.#outage) return;
    this.#outage = false;
    this.#logger.info({ redis: this.where }, 'Redis is back: limits are shared with other replicas again');
  }

  /** Runs once connected and again after every reconnect (Redis may have restarted and lost what it held). */
  onConnect(listener: () => void): void {
    this.#onConnect.push(listener);
    if (this.usable()) listener();
  }

  /** The plain client, for the few keys and messages that are not Bottleneck's. */
  get client(): Redis {
    return this.#client;
  }

  /** Delivers messages published on `channel` (by any replica, this one included). */
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    this.#subscriber.on('message', (from: string, message: string) => {
      if (from === channel) listener(message);
    });
    // ioredis subscribes again by itself after every reconnect.
    const subscribe = () => this.#subscriber.subscribe(channel).catch((error: unknown) => this.failed(error));
    if (this.#subscriber.status === 'ready') await subscribe();
    else this.#subscriber.once('ready', () => void subscribe());
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.connection.disconnect(false).catch(() => {});
  }
}
