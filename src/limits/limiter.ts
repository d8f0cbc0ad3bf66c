// The tunnel's own limits. A WindowLimiter gives each key (a client address, a project) a budget per
// clock-aligned window: counted in this process, or shared by every replica through Bottleneck's
// ioredis clustering, falling back to this process whenever Redis fails. An UpstreamGate bounds the
// requests in flight to Sentry and the requests waiting for them.
import Bottleneck from 'bottleneck';
import { TunnelError } from '../errors.js';
import type { RedisLink } from './redis.js';

export interface Admission {
  readonly allowed: boolean;
  /** Until the current window ends; what a refused client is told to wait. */
  readonly retryAfterMs: number;
}

/** Shared keys outlive their window by this much, so replicas with slightly skewed clocks still find them. */
const KEY_GRACE_MS = 5_000;

/**
 * Keys one limiter tracks per window. Past it, new keys share one budget (OVERFLOW_KEY), so memory
 * stays bounded when clients spray addresses; the keys already seen keep theirs.
 */
export const MAX_KEYS_PER_WINDOW = 100_000;
const OVERFLOW_KEY = '*';

/** Bottleneck's reply when Redis lost a limiter's state (restart, eviction); Redis ≥ 7 prefixes it with "ERR ". */
const STALE_LIMITER = /SETTINGS_KEY_NOT_FOUND|UNKNOWN_CLIENT/;

/**
 * Fixed windows aligned to the clock (window n covers [n·windowMs, (n+1)·windowMs)), so every replica
 * agrees on the window and on Retry-After without asking anyone.
 *
 * In this process a key's budget is a counter in a Map, taken synchronously. (Bottleneck's in-process
 * reservoir answered each take after a setTimeout(0), a millisecond of latency on every request, and
 * cost ~5 KB per key.) Shared, each key is a Bottleneck limiter on Redis whose reservoir starts at
 * `max`; `incrementReservoir(-1)` takes one atomically in a Lua script, and a result below zero means
 * the budget is spent. Everything of a finished window is discarded at once, so memory follows the
 * keys seen in one window, at most maxKeys of them.
 */
export class WindowLimiter {
  readonly #id: string;
  readonly #max: number;
  readonly #windowMs: number;
  readonly #shared: RedisLink | undefined;
  readonly #timeoutMs: number;
  readonly #maxKeys: number;
  readonly #onOverflow: (() => void) | undefined;
  #window = -1;
  /** Every key seen this window, with what it took from this process's budget. */
  #taken = new Map<string, number>();
  #remote = new Map<string, Bottleneck>();

  constructor(options: {
    id: string;
    max: number;
    windowMs: number;
    shared?: RedisLink | undefined;
    timeoutMs?: number | undefined;
    maxKeys?: number;
    /** Called once per window, when the first key past maxKeys arrives. */
    onOverflow?: () => void;
  }) {
    this.#id = options.id;
    this.#max = options.max;
    this.#windowMs = options.windowMs;
    this.#shared = options.shared;
    this.#timeoutMs = options.timeoutMs ?? 1_000;
    this.#maxKeys = options.maxKeys ?? MAX_KEYS_PER_WINDOW;
    this.#onOverflow = options.onOverflow;
  }

  /** Takes one from `key`'s budget: at once in this process, a promise only while Redis decides. */
  take(key: string): Admission | Promise<Admission> {
    const now = Date.now();
    const window = Math.floor(now / this.#windowMs);
    if (window > this.#window) this.#rotate(window);
    const retryAfterMs = (window + 1) * this.#windowMs - now;
    if (!this.#taken.has(key)) {
      if (this.#taken.size >= this.#maxKeys) {
        if (!this.#taken.has(OVERFLOW_KEY)) this.#onOverflow?.();
        key = OVERFLOW_KEY;
      }
      if (!this.#taken.has(key)) this.#taken.set(key, 0);
    }
    const shared = this.#shared;
    if (!shared?.usable()) return this.#takeHere(key, retryAfterMs);
    // Redis unable to say: this process decides, as it does without Redis.
    return this.#takeShared(key, window, shared).then((left) => (left === undefined ? this.#takeHere(key, retryAfterMs) : { allowed: left >= 0, retryAfterMs }));
  }

  #takeHere(key: string, retryAfterMs: number): Admission {
    const taken = (this.#taken.get(key) ?? 0) + 1;
    this.#taken.set(key, taken);
    return { allowed: taken <= this.#max, retryAfterMs };
  }

  /** Forgets every shared limiter: after a reconnect Redis may have lost them, and fresh ones re-create their state. */
  resetShared(): void {
    const old = this.#remote;
    this.#remote = new Map();
    retire(old.values());
  }

  close(): void {
    retire(this.#remote.values());
    this.#taken = new Map();
    this.#remote = new Map();
  }

  /** The remaining budget from Redis, or undefined when Redis cannot say (then this process decides). */
  async #takeShared(key: string, window: number, shared: RedisLink): Promise<number | undefined> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const limiter = this.#limiter(key, window, shared);
      try {
        const left = await withTimeout(limiter.incrementReservoir(-1), this.#timeoutMs);
        shared.succeeded();
        return left;
      } catch (error) {
        this.#drop(key, limiter);
        if (attempt === 1 && error instanceof Error && STALE_LIMITER.test(error.message)) continue;
        shared.failed(error);
        return undefined;
      }
    }
    return undefined;
  }

  #limiter(key: string, window: number, shared: RedisLink): Bottleneck {
    const existing = this.#remote.get(key);
    if (existing) return existing;
    const lifetime = this.#windowMs + KEY_GRACE_MS;
    const limiter = new Bottleneck({
      id: `${this.#id}:${window}:${key}`,
      reservoir: this.#max,
      datastore: 'ioredis',
      connection: shared.connection,
      // Redis keys expire this long after their last use.
      timeout: lifetime,
      // Not in bottleneck.d.ts. A limiter lives one window and queues nothing, so it needs no
      // heartbeat (one Redis call per limiter every 5 s by default) and must not be forgotten by Redis
      // while its window lasts.
      ...{ heartbeatInterval: lifetime, clientTimeout: 2 * lifetime },
    });
    // Errors outside a call (heartbeats, pub/sub): a fresh limiter is made on the next call.
    limiter.on('error', () => this.#drop(key, limiter));
    this.#remote.set(key, limiter);
    return limiter;
  }

  #drop(key: string, limiter: Bottleneck): void {
    if (this.#remote.get(key) !== limiter) return;
    this.#remote.delete(key);
    retire([limiter]);
  }

  #rotate(window: number): void {
    this.#window = window;
    const remote = this.#remote;
    this.#taken = new Map();
    this.#remote = new Map();
    retire(remote.values());
  }
}

function retire(limiters: Iterable<Bottleneck>): void {
  for (const limiter of limiters) {
    // With a shared connection this only unsubscribes (and may return nothing); its state in Redis expires.
    void Promise.resolve(limiter.disconnect(false)).catch(() => {});
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A power of two: the UpstreamGate times one call in this many. */
const SAMPLED_TASKS = 8;

/** A call to Sentry, waiting for and then holding one of the UpstreamGate's slots. */
export interface GateEntry {
  /** The slot is this call's now; it gives it back with leave(stamp). */
  start(stamp: number): void;
}

/**
 * At most `maxConcurrent` requests to Sentry at once and `maxQueued` waiting (first come, first
 * served); one more is refused with 503 overloaded. A plain counter and queue rather than
 * Bottleneck: Bottleneck's in-process limiter passes every job through several setTimeout(0) turns,
 * one submission at a time, which capped it at a few hundred requests a second here.
 */
export class UpstreamGate {
  readonly #maxConcurrent: number;
  readonly #maxQueued: number;
  readonly #waiting: GateEntry[] = [];
  #running = 0;
  /** Moving average of how long Sentry takes, to tell refused clients how long the queue needs. */
  #averageMs = 100;
  #tasks = 0;

  constructor(maxConcurrent: number, maxQueued: number) {
    this.#maxConcurrent = maxConcurrent;
    this.#maxQueued = maxQueued;
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /**
   * Starts `entry` in a slot: at once when one is free, else once a running call leaves. Past the
   * queue it is refused: the overloaded error is returned, and `entry` never starts.
   */
  enter(entry: GateEntry): TunnelError | undefined {
    if (this.#running < this.#maxConcurrent) {
      this.#running++;
      entry.start(this.#stamp());
      return undefined;
    }
    if (this.#waiting.length >= this.#maxQueued) return new TunnelError('overloaded', { headers: { 'retry-after': String(this.#drainSeconds()) } });
    this.#waiting.push(entry);
    return undefined;
  }

  /** Gives back the slot of the call that started with `stamp`: the first waiting call takes it over. */
  leave(stamp: number): void {
    if (stamp >= 0) this.#averageMs += (Date.now() - stamp - this.#averageMs) / 16;
    const next = this.#waiting.shift();
    if (next === undefined) {
      this.#running--;
      return;
    }
    // In a microtask, not inside the call that left: a queue of calls failing at once would otherwise
    // start each other one stack frame deeper every time.
    const nextStamp = this.#stamp();
    queueMicrotask(() => next.start(nextStamp));
  }

  /**
   * One call in SAMPLED_TASKS is timed, for an estimate in seconds: two clock reads per forward cost
   * more than the rest of the gate (bench:instructions). Date.now(), not performance.now(): half the
   * cost. -1 for a call not timed.
   */
  #stamp(): number {
    return (this.#tasks++ & (SAMPLED_TASKS - 1)) === 0 ? Date.now() : -1;
  }

  /** Whole seconds until the queue has likely drained, between 1 and 60. */
  #drainSeconds(): number {
    const seconds = Math.ceil((this.#waiting.length * this.#averageMs) / this.#maxConcurrent / 1000);
    return Math.min(60, Math.max(1, seconds));
  }
}
