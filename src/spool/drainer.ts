// The drainer: re-sends spooled envelopes in the background, oldest first, one at a time per project
// and each project on its own schedule, so one failing project never holds back another.
import type { Logger } from 'pino';
import type { UpstreamTarget } from '../core/dsn.js';
import { type RetryOptions, backoffMs, parseRetryAfter, sentryWaitMs } from './backoff.js';
import { TunnelError } from '../errors.js';
import type { ProjectRegistry } from '../core/projects.js';
import type { Spool, SpoolEntry } from './spool.js';
import type { Forward, UpstreamReply } from '../upstream/upstream.js';

interface ProjectDrain {
  /** A loop is sending this project's entries right now. */
  active: boolean;
  running?: Promise<void>;
  timer?: NodeJS.Timeout;
  /** Consecutive transient failures: the back-off exponent. */
  attempts: number;
  /** Sentry asked us to stay away until then (Retry-After, rate limits): a live success does not cut this short. */
  holdUntil: number;
  controller?: AbortController;
}

export class Drainer {
  readonly #drains = new Map<string, ProjectDrain>();
  #sweep: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly spool: Spool,
    /** The forwarder inside the spool (never the spooling one, or failures would re-spool). */
    private readonly forward: Forward,
    private readonly projects: ProjectRegistry,
    private readonly retry: RetryOptions,
    private readonly logger: Logger,
  ) {}

  /** Resumes whatever the spool holds and starts the maxAgeMs sweep. */
  start(): void {
    void this.#expire();
    for (const project of this.spool.projects()) {
      if (this.projects.byName.has(project)) this.#launch(project);
      else {
        this.logger.warn({ project }, `spool: envelopes for project "${project}", which is not configured, are kept until spool.maxAgeMs and never sent`);
      }
    }
    const every = Math.min(60_000, Math.max(50, Math.floor(this.spool.options.maxAgeMs / 4)));
    this.#sweep = setInterval(() => void this.#expire(), every).unref();
  }

  /** A live request was just spooled for `project`: make sure a send is scheduled. */
  notify(project: string): void {
    const drain = this.#drain(project);
    if (this.#stopped || drain.active || drain.timer) return;
    this.#schedule(project, drain, Math.max(this.retry.initialMs, drain.holdUntil - Date.now()));
  }

  /** A live request to `project` just succeeded: Sentry is back, so stop waiting out a back-off. */
  recovered(project: string): void {
    const drain = this.#drains.get(project);
    if (!drain?.timer || drain.holdUntil > Date.now()) return;
    clearTimeout(drain.timer);
    drain.timer = undefined;
    this.#launch(project);
  }

  /** Stops scheduling, aborts sends in flight (their entries stay spooled) and waits for the loops to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#sweep);
    for (const drain of this.#drains.values()) {
      clearTimeout(drain.timer);
      drain.controller?.abort();
    }
    await Promise.allSettled([...this.#drains.values()].map((drain) => drain.running));
  }

  #drain(project: string): ProjectDrain {
    let drain = this.#drains.get(project);
    if (!drain) this.#drains.set(project, (drain = { active: false, attempts: 0, holdUntil: 0 }));
    return drain;
  }

  #schedule(project: string, drain: ProjectDrain, delayMs: number): void {
    clearTimeout(drain.timer);
    drain.timer = setTimeout(() => {
      drain.timer = undefined;
      this.#launch(project);
    }, delayMs).unref();
  }

  #launch(project: string): void {
    const drain = this.#drain(project);
    if (this.#stopped || drain.active) return;
    drain.active = true;
    drain.running = this.#run(project, drain).catch((error: unknown) => {
      drain.active = false;
      this.logger.error({ err: error, project }, 'spool: drainer failed unexpectedly; retrying later');
      if (!this.#stopped) this.#schedule(project, drain, backoffMs(++drain.attempts, this.retry));
    });
  }

  async #run(project: string, drain: ProjectDrain): Promise<void> {
    let delivered = 0;
    for (;;) {
      const entry = this.spool.oldest(project);
      const target = this.projects.byName.get(project)?.target;
      // Decided and flagged in the same tick as the check, so a concurrent notify() is never lost.
      if (this.#stopped || !entry || !target) {
        drain.active = false;
        if (!entry && delivered > 0) this.logger.info({ project, delivered, attempts: drain.attempts }, 'spool: project drained');
        if (!entry) drain.attempts = 0;
        return;
      }
      if (this.spool.isExpired(entry)) {
        await this.#expire();
        continue;
      }
      const result = await this.#send(entry, target, drain);
      if (this.#stopped) continue;
      if (result.kind === 'delivered') delivered++;
      if (result.waitMs !== undefined) {
        drain.active = false;
        this.#schedule(project, drain, result.waitMs);
        return;
      }
    }
  }

  /** One attempt; says whether to go on with the next entry or wait. */
  async #send(entry: SpoolEntry, target: UpstreamTarget, drain: ProjectDrain): Promise<{ kind: 'delivered' | 'rejected' | 'retry'; waitMs?: number }> {
    entry.sending = true;
    const controller = new AbortController();
    drain.controller = controller;
    let reply: UpstreamReply | undefined;
    let failure: unknown;
    try {
      let stored;
      try {
        stored = await this.spool.read(entry);
      } catch (error) {
        entry.sending = false;
        await this.spool.setAside(entry, error);
        return { kind: 'rejected' };
      }
      const headers = { ...stored.meta.headers, 'content-length': String(stored.body.length) };
      reply = await this.forward({ project: entry.project, target, headers, header: stored.meta.header, body: stored.body, signal: controller.signal });
    } catch (error) {
      failure = error;
    } finally {
      entry.sending = false;
      drain.controller = undefined;
    }
    if (this.#stopped) return { kind: 'retry' };
    const log = { project: entry.project, entry: entry.name, attempts: drain.attempts };

    if (reply && reply.status < 300) {
      await this.spool.remove(entry, 'delivered');
      drain.attempts = 0;
      this.logger.debug({ ...log, upstreamStatus: reply.status }, 'spool: envelope delivered');
      return { kind: 'delivered', waitMs: this.#hold(drain, sentryWaitMs(reply)) };
    }
    if (reply?.status === 429) {
      const waitMs = this.#hold(drain, sentryWaitMs(reply));
      this.logger.info({ ...log, upstreamStatus: 429, waitMs }, 'spool: Sentry rate-limits this project; waiting before the next send');
      return { kind: 'retry', waitMs };
    }
    if (reply && reply.status >= 400 && reply.status < 500) {
      // Sentry's final word on this envelope (malformed, too large, key disabled): sending it again cannot help.
      await this.spool.remove(entry, 'rejected');
      this.logger.warn({ ...log, upstreamStatus: reply.status, sentryError: reply.headers['x-sentry-error'] }, 'spool: Sentry rejected a spooled envelope; deleted');
      return { kind: 'rejected' };
    }
    drain.attempts++;
    const told = reply ? sentryWaitMs(reply) : failure instanceof TunnelError ? parseRetryAfter(failure.headers?.['retry-after']) : undefined;
    const waitMs = Math.max(backoffMs(drain.attempts, this.retry), this.#hold(drain, told) ?? 0);
    this.logger.warn(
      { ...log, attempts: drain.attempts, waitMs, ...(reply ? { upstreamStatus: reply.status } : { code: failure instanceof TunnelError ? failure.code : 'internal_error' }) },
      'spool: Sentry still unavailable; retrying later',
    );
    return { kind: 'retry', waitMs };
  }

  /** Remembers a wait Sentry asked for, so a live success does not cut it short. */
  #hold(drain: ProjectDrain, waitMs: number | undefined): number | undefined {
    if (waitMs === undefined) return undefined;
    drain.holdUntil = Date.now() + waitMs;
    return waitMs;
  }

  async #expire(): Promise<void> {
    await this.spool.expire().catch((error: unknown) => this.logger.error({ err: error }, 'spool: expiry sweep failed'));
  }
}
