// Spooling wrapped around the forwarder: when Sentry cannot take an envelope right now (unreachable,
// timed out, 5xx) it is written to the spool and the client gets the 200 Sentry would have given; the
// drainer sends it later. 4xx (429 included) are Sentry's decision and pass through untouched.
import { Buffer } from 'node:buffer';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { Drainer } from './drainer.js';
import { type ErrorCode, TunnelError } from '../errors.js';
import type { ProjectRegistry } from '../core/projects.js';
import { BodyCapture } from './capture.js';
import type { EntryMeta } from './files.js';
import { Spool, type SpoolEntry } from './spool.js';
import { type Forward, type OutboundEnvelope, type UpstreamReply, toTunnelError } from '../upstream/upstream.js';

/** Failures worth another try later; everything else (redirects, local limits) is answered as usual. */
const SPOOLED_CODES: ReadonlySet<ErrorCode> = new Set(['upstream_unavailable', 'upstream_timeout']);

export interface Spooling {
  readonly spool: Spool;
  readonly drainer: Drainer;
  /** The forwarder to hand the pipeline: the inner one plus spooling. */
  readonly forward: Forward;
  /** Aborts the live forwards still running (shutdown timeout reached): each is spooled and answered 200. */
  abortInFlight(): void;
  /** Stops the drainer and releases the spool directory. */
  stop(): Promise<void>;
}

/** Opens the spool (throws an Error saying what is wrong with spool.dir) and starts the drainer on `inner`. */
export async function startSpooling(config: Config['spool'] & { dir: string }, inner: Forward, projects: ProjectRegistry, logger: Logger): Promise<Spooling> {
  const spool = await Spool.open(config, logger);
  const drainer = new Drainer(spool, inner, projects, config.retry, logger);
  const inFlight = new Set<AbortController>();
  let shuttingDown = false;

  const forward: Forward = async (envelope) => {
    const meta: EntryMeta = { v: 1, project: envelope.project, receivedAt: Date.now(), headers: storedHeaders(envelope.headers), header: envelope.header };
    let capture: BodyCapture | undefined;
    let captureError: unknown;
    if (!Buffer.isBuffer(envelope.body)) {
      const declared = envelope.headers['content-length'];
      capture = await BodyCapture.start(spool, meta, envelope.body, declared === undefined ? undefined : Number(declared)).catch((error: unknown) => {
        captureError = error;
        logger.error({ err: error, dir: config.dir }, 'spool: cannot keep a copy of a streamed body; it is forwarded without one');
        return undefined;
      });
    }
    const controller = new AbortController();
    inFlight.add(controller);
    let reply: UpstreamReply | undefined;
    let failure: TunnelError | undefined;
    try {
      const signal = envelope.signal ? AbortSignal.any([envelope.signal, controller.signal]) : controller.signal;
      reply = await inner({ ...envelope, body: capture?.stream ?? envelope.body, signal });
    } catch (error) {
      failure = toTunnelError(error);
    } finally {
      inFlight.delete(controller);
    }

    if (reply ? reply.status < 500 : !SPOOLED_CODES.has((failure as TunnelError).code)) {
      capture?.discard();
      if (!reply) throw failure;
      if (reply.status < 300) drainer.recovered(envelope.project);
      return reply;
    }
    const aborted = controller.signal.aborted && shuttingDown;
    const cause = aborted ? 'shutdown' : reply ? `upstream answered ${reply.status}` : describe(failure as TunnelError);
    const publicCause = aborted ? 'shutdown' : reply ? `upstream_status ${reply.status}` : shortCause(failure as TunnelError);
    let entry: SpoolEntry;
    if (capture) entry = await capture.commit();
    else if (Buffer.isBuffer(envelope.body)) entry = await spool.write(meta, envelope.body);
    else throw new TunnelError('spool_write_failed', { cause: captureError });
    drainer.notify(entry.project);
    return spooledReply(envelope, cause, publicCause, reply?.status);
  };

  drainer.start();
  return {
    spool,
    drainer,
    forward,
    abortInFlight() {
      shuttingDown = true;
      for (const controller of inFlight) controller.abort();
    },
    async stop() {
      await drainer.stop();
      await spool.close();
    },
  };
}

/** Response headers that tell a spooled 200 from Sentry's own; SDKs ignore them, send-test reads them. */
export const OUTCOME_HEADER = 'x-sentry-tunnel-outcome';
export const SPOOL_CAUSE_HEADER = 'x-sentry-tunnel-spool-cause';

/**
 * What Sentry answers for an accepted envelope (its event id, or an empty object), marked as spooled.
 * The cause header carries only the catalogue code and errno, never hosts, addresses or messages.
 */
function spooledReply(envelope: OutboundEnvelope, cause: string, publicCause: string, upstreamStatus: number | undefined): UpstreamReply {
  const id = envelope.header.event_id;
  const body = Buffer.from(JSON.stringify(typeof id === 'string' ? { id } : {}));
  const headers = { 'content-type': 'application/json', [OUTCOME_HEADER]: 'spooled', [SPOOL_CAUSE_HEADER]: publicCause };
  return { status: 200, headers, body, spooled: { cause, ...(upstreamStatus === undefined ? {} : { upstreamStatus }) } };
}

/** Content-Length is set again on re-send from the stored size (a streamed body may have had none). */
function storedHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const { 'content-length': _length, ...rest } = headers;
  return rest;
}

/** "upstream_unavailable ECONNREFUSED": the code and errno only, safe to hand any client. */
function shortCause(error: TunnelError): string {
  const errno = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof errno === 'string' && /^[A-Z][A-Z0-9_]*$/.test(errno) ? `${error.code} ${errno}` : error.code;
}

function describe(error: TunnelError): string {
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (!cause) return error.code;
  const code = typeof cause.code === 'string' ? `${cause.code}: ` : '';
  return `${error.code} (${code}${typeof cause.message === 'string' ? cause.message : String(cause)})`;
}
