// Why a test event did not reach Sentry, in plain words, and what to do about it: one diagnosis per
// cause, from the network error or the answer (the tunnel's own JSON `code`, or Sentry's answer passed on).
import { ERRORS } from '../errors.js';

export type Via = 'tunnel' | 'direct';

export interface HttpAnswer {
  readonly status: number;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface Diagnosis {
  /** Stable identifier of the cause, for --json. */
  readonly cause: string;
  readonly problem: string;
  readonly fix: string;
}

export interface DiagnosisContext {
  readonly via: Via;
  /** Where the request went (the tunnel URL, or Sentry's ingest URL with --direct). */
  readonly url: URL;
  /** Host (and port) of Sentry ingest, from the DSN. */
  readonly sentryHost: string;
  readonly project: string | undefined;
  readonly origin: string | undefined;
  /** The tunnel path the configuration names, when send-test loaded one. */
  readonly configuredPath: string | undefined;
  /** `--config <file>` to repeat in suggested commands ("" when none). */
  readonly configArg: string;
  readonly envelopeBytes: number;
  readonly timeoutMs: number;
}

/** The tunnel's own error answer: JSON `{ error, code }`. Anything else came from Sentry or from something in between. */
export function tunnelCode(answer: HttpAnswer, via: Via): string | undefined {
  if (via !== 'tunnel') return undefined;
  const body = parseJson(answer.body);
  return typeof body?.code === 'string' && typeof body.error === 'string' ? body.code : undefined;
}

/** Sentry's reason for refusing: the X-Sentry-Error header, or the `detail` of its JSON body. */
export function sentryError(answer: HttpAnswer): string | undefined {
  const header = answer.headers['x-sentry-error'];
  if (header) return header;
  const detail = parseJson(answer.body)?.detail;
  return typeof detail === 'string' ? detail : undefined;
}

export function diagnoseNetworkError(error: { code?: string; name?: string; message: string }, ctx: DiagnosisContext): Diagnosis {
  const target = ctx.url.host;
  const tunnel = ctx.via === 'tunnel';
  const start = `Start the tunnel with \`sentry-tunnel serve${ctx.configArg}\`; if it runs elsewhere or on another port, pass that address with --url`;
  if (error.code === 'ECONNREFUSED') {
    return tunnel
      ? { cause: 'not_listening', problem: `Nothing is listening at ${target} (connection refused): the tunnel is not running there.`, fix: `${start}.` }
      : { cause: 'sentry_unreachable', problem: `Sentry at ${target} refused the connection.`, fix: 'Check the host and port in the DSN; for a self-hosted Sentry, check that it is running.' };
  }
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
    return {
      cause: 'host_not_found',
      problem: `The name ${ctx.url.hostname} does not resolve (DNS: ${error.code}).`,
      fix: tunnel ? 'Check the host in --url (or server.host in the configuration).' : 'Check the host in the DSN, and DNS on this machine.',
    };
  }
  if (error.name === 'TimeoutError' || error.code === 'UND_ERR_CONNECT_TIMEOUT' || error.code === 'UND_ERR_HEADERS_TIMEOUT') {
    return {
      cause: 'no_answer',
      problem: `${tunnel ? 'The tunnel' : 'Sentry'} at ${target} did not answer within ${ctx.timeoutMs} ms.`,
      fix: tunnel
        ? 'A firewall may drop the packets, or the tunnel waits on Sentry longer than --timeout: raise --timeout above upstream.timeoutMs, and check the tunnel\'s log.'
        : `A firewall or outbound proxy may block ${ctx.url.protocol.replace(':', '')} to ${target}; try again with a larger --timeout.`,
    };
  }
  return {
    cause: 'connection_failed',
    problem: `Could not talk to ${tunnel ? 'the tunnel' : 'Sentry'} at ${target}: ${error.code ? `${error.code}: ` : ''}${error.message}.`,
    fix: tunnel
      ? `Check --url: the scheme (http or https) and port must match what serves the tunnel. ${start}.`
      : 'Check the DSN\'s scheme and port, TLS certificates, and any outbound proxy or firewall on this machine.',
  };
}

/**
 * A 200 the tunnel gave for an event it kept in its spool (X-Sentry-Tunnel-Outcome: spooled), so
 * nothing reached Sentry yet: what kept it, and what to check on the tunnel's machine.
 */
export function diagnoseSpooled(answer: HttpAnswer, ctx: DiagnosisContext): { spoolCause: string; diagnosis: Diagnosis } | undefined {
  if (ctx.via !== 'tunnel' || answer.headers['x-sentry-tunnel-outcome'] !== 'spooled') return undefined;
  const spoolCause = answer.headers['x-sentry-tunnel-spool-cause'] || 'no cause given';
  const host = ctx.sentryHost.replace(/:\d+$/, '');
  const why = spoolCause.startsWith('upstream_timeout')
    ? 'Sentry did not answer it within upstream.timeoutMs'
    : spoolCause.startsWith('upstream_status')
      ? `Sentry answered ${spoolCause.split(' ')[1] ?? '5xx'}`
      : spoolCause === 'shutdown'
        ? 'the tunnel was shutting down'
        : 'Sentry could not be reached (connection refused or reset, or DNS failure)';
  return {
    spoolCause,
    diagnosis: {
      cause: 'spooled',
      problem: `The tunnel answered 200 but did not deliver the event to Sentry at ${ctx.sentryHost}: ${why} (${spoolCause}). It kept the event in its spool and re-sends it once Sentry takes it.`,
      fix: `On the tunnel's machine check DNS for ${host}, firewall and egress rules, and any outbound proxy you must use; the tunnel's log line for this request says "outcome":"spooled" and the full cause. \`sentry-tunnel send-test --direct\` from that machine tries Sentry without the tunnel.`,
    },
  };
}

/** A preflight a browser would not accept (and no tunnel code explains it). */
export function diagnosePreflight(answer: HttpAnswer, ctx: DiagnosisContext): Diagnosis | undefined {
  const allowed = answer.headers['access-control-allow-origin'];
  if (answer.status >= 200 && answer.status < 300 && (allowed === '*' || allowed === ctx.origin)) return undefined;
  if (tunnelCode(answer, ctx.via)) return diagnoseAnswer(answer, ctx);
  if (answer.status >= 200 && answer.status < 300) {
    return {
      cause: 'origin_not_allowed',
      problem: `The preflight answer has no Access-Control-Allow-Origin for ${ctx.origin}: a browser on that site will not send events to ${ctx.url.origin} (cors.origins is false, or a proxy strips the header).`,
      fix: `Set "cors": { "origins": ["${ctx.origin}"] } in the tunnel's configuration and restart it.`,
    };
  }
  return {
    cause: 'preflight_refused',
    problem: `The CORS preflight (OPTIONS ${ctx.url.pathname}) got ${answer.status} instead of sentry-tunnel's answer: a browser on ${ctx.origin} would not send the event.`,
    fix: 'Make sure OPTIONS requests for this path reach the tunnel (check the reverse proxy in front of it).',
  };
}

/** Why the answer is not "Sentry accepted the event"; undefined when it is. */
export function diagnoseAnswer(answer: HttpAnswer, ctx: DiagnosisContext): Diagnosis | undefined {
  const code = tunnelCode(answer, ctx.via);
  if (code !== undefined) return diagnoseTunnelCode(code, answer, ctx);
  if (answer.status >= 200 && answer.status < 300) {
    // Sentry answers an accepted event with {"id": "<event id>"}; a 200 without it is someone else.
    if (typeof parseJson(answer.body)?.id === 'string') return undefined;
    return {
      cause: 'not_sentry',
      problem: `${ctx.url.host} answered ${answer.status}, but not with Sentry's {"id": …}: something else serves ${ctx.url.pathname} (a web server or an app's catch-all route), so the event went nowhere.`,
      fix: ctx.via === 'tunnel' ? 'Check --url, and that the reverse proxy forwards this path to sentry-tunnel.' : 'Check the DSN: its host is not a Sentry ingest.',
    };
  }
  return diagnoseUpstreamAnswer(answer, ctx);
}

function diagnoseTunnelCode(code: string, answer: HttpAnswer, ctx: DiagnosisContext): Diagnosis {
  const restart = 'in the tunnel\'s configuration and restart it';
  const sentence = String(parseJson(answer.body)?.error ?? '');
  const path = ctx.url.pathname;
  switch (code) {
    case 'not_found':
      return {
        cause: 'wrong_path',
        problem: `The tunnel is running at ${ctx.url.origin}, but serves a different path than ${path}.`,
        fix:
          ctx.configuredPath && ctx.configuredPath !== path
            ? `Use its server.path: --url ${ctx.url.origin}${ctx.configuredPath} (and the same path in Sentry.init({ tunnel })).`
            : 'Use the tunnel\'s server.path in --url and in Sentry.init({ tunnel }); `sentry-tunnel check-config` prints it.',
      };
    case 'unknown_project':
      return { cause: 'unknown_project', problem: `The tunnel has no project named in ${path}.`, fix: `Post to the tunnel path without the project name, or add that project under "projects" ${restart}.` };
    case 'dsn_not_allowed':
      return {
        cause: 'dsn_not_allowed',
        problem: 'The tunnel is running, but does not forward to this DSN: it is not one of its projects.',
        fix: `Add the DSN under "projects" ${restart}, e.g. "projects": { "${ctx.project ?? 'web'}": { "dsn": "<the DSN from Sentry.init>" } } — or check that the tunnel runs with the configuration you expect.`,
      };
    case 'dsn_mismatch':
      return { cause: 'dsn_mismatch', problem: `The DSN does not belong to the project named in ${path}.`, fix: 'Post to the project\'s own path, or to the tunnel path without a project name.' };
    case 'origin_not_allowed':
      return {
        cause: 'origin_not_allowed',
        problem: `The tunnel refuses requests from ${ctx.origin ?? 'this Origin'}: it is not in cors.origins.`,
        fix: `Add "${ctx.origin ?? '<your site\'s origin>'}" to cors.origins ${restart} (exactly scheme://host[:port], no path).`,
      };
    case 'envelope_too_large':
    case 'header_too_large':
      return {
        cause: 'too_large',
        problem: `The tunnel refused even this ${ctx.envelopeBytes}-byte test envelope as too large: its limits are set far too low.`,
        fix: `Raise limits.maxEnvelopeBytes, limits.maxDecodedBytes and limits.maxHeaderLineBytes ${restart} (defaults: 20 MiB, 100 MiB, 64 KiB).`,
      };
    case 'upstream_unavailable':
      return {
        cause: 'sentry_unreachable',
        problem: `The tunnel is running, but cannot reach Sentry at ${ctx.sentryHost} (connection refused or reset, or DNS failure).`,
        fix: `On the tunnel's machine check DNS for ${ctx.sentryHost.replace(/:\d+$/, '')}, firewall and egress rules, and any outbound proxy you must use; the tunnel's log line for this request names the cause. \`sentry-tunnel send-test --direct\` from that machine tries Sentry without the tunnel.`,
      };
    case 'upstream_redirect':
      return {
        cause: 'sentry_redirect',
        problem: `Sentry at ${ctx.sentryHost} answered the tunnel with a redirect, which the tunnel never follows.`,
        fix: 'The DSN\'s scheme or host is not where Sentry ingests (http instead of https, a moved self-hosted Sentry): copy the DSN again from Sentry → Project Settings → Client Keys (DSN).',
      };
    case 'upstream_timeout':
      return {
        cause: 'sentry_timeout',
        problem: `The tunnel is running, but Sentry at ${ctx.sentryHost} did not answer it within upstream.timeoutMs.`,
        fix: `On the tunnel's machine check the network path to ${ctx.sentryHost} (firewall that drops packets, a slow outbound proxy); raise upstream.timeoutMs if Sentry is just slow.`,
      };
    case 'spool_full':
    case 'spool_write_failed':
      return {
        cause: 'sentry_unreachable',
        problem: `The tunnel cannot reach Sentry at ${ctx.sentryHost}, and its spool cannot keep more (${code}).`,
        fix: `Fix the way to ${ctx.sentryHost} from the tunnel's machine first (\`sentry-tunnel send-test --direct\` there); ${code === 'spool_full' ? 'raise spool.maxBytes if the outage is expected to last' : 'check the disk under spool.dir'}.`,
      };
    case 'shutting_down':
      return { cause: 'tunnel_shutting_down', problem: 'The tunnel is shutting down.', fix: 'Wait until it has restarted, then try again.' };
    default:
      if (answer.status === 429) return rateLimited(answer, 'tunnel', code);
      return {
        cause: 'tunnel_rejected',
        problem: `The tunnel refused the event with ${answer.status} ${code}: ${sentence || ERRORS[code as keyof typeof ERRORS]?.message || 'no reason given'}`,
        fix: answer.status >= 500 ? 'The tunnel\'s log line for this request has the details.' : 'Check the tunnel\'s log line for this request; this test envelope is what an SDK sends, so other clients are likely refused too.',
      };
  }
}

function diagnoseUpstreamAnswer(answer: HttpAnswer, ctx: DiagnosisContext): Diagnosis {
  const reason = sentryError(answer);
  const tunnel = ctx.via === 'tunnel';
  const said = reason ? `: "${reason}"` : '';
  const dsnPath = ctx.project ? `projects.${ctx.project}.dsn` : 'the DSN';
  if (answer.status === 429) return rateLimited(answer, 'sentry', undefined);
  if ((answer.status === 401 || answer.status === 403) && (reason || !tunnel)) {
    return {
      cause: 'key_rejected',
      problem: `Sentry refused the DSN's key${said}. The key is revoked, disabled or wrong, or the project is gone.`,
      fix: `Copy the DSN again from Sentry → Project Settings → Client Keys (DSN) and update ${dsnPath} (and Sentry.init).`,
    };
  }
  if (tunnel && !reason && [404, 413, 502, 503, 504, 401, 403].includes(answer.status)) {
    return {
      cause: 'not_the_tunnel',
      problem: `Something at ${ctx.url.host} answered ${answer.status} without sentry-tunnel's JSON error: a reverse proxy in front of the tunnel${answer.status >= 502 ? ' that cannot reach it' : ''}, another server on that port, or Sentry's own answer passed on.`,
      fix:
        answer.status >= 502
          ? 'Check that the tunnel runs and that the proxy forwards to its host and port; `sentry-tunnel send-test --direct` tells a Sentry problem apart.'
          : `Check --url and the proxy configuration for ${ctx.url.pathname}${answer.status === 413 ? ' (e.g. nginx client_max_body_size)' : ''}.`,
    };
  }
  if (answer.status === 413) {
    return { cause: 'too_large', problem: `Sentry refused the envelope as too large${said}.`, fix: 'Sentry\'s limits apply to the whole request; this should not happen with the tiny test envelope, so check what sits between you and Sentry.' };
  }
  return {
    cause: answer.status >= 500 ? 'sentry_error' : 'sentry_rejected',
    problem: `Sentry answered ${answer.status}${said || ' without saying why'}.`,
    fix: answer.status >= 500 ? 'Sentry has trouble right now: check https://status.sentry.io (or your self-hosted Sentry\'s logs) and try again later.' : `Check ${dsnPath}; the reason above is Sentry's own.`,
  };
}

function rateLimited(answer: HttpAnswer, by: 'tunnel' | 'sentry', code: string | undefined): Diagnosis {
  const limits = parseRateLimits(answer.headers['x-sentry-rate-limits']);
  const seconds = limits[0]?.seconds ?? parseRetryAfter(answer.headers['retry-after']);
  const howLong = seconds === undefined ? 'for a while (no Retry-After given)' : `for ${formatSeconds(seconds)}`;
  const detail = limits
    .map((limit) => `${limit.categories.length > 0 ? limit.categories.join(', ') : 'all data'}${limit.scope ? ` (scope ${limit.scope}${limit.reason ? `, reason ${limit.reason}` : ''})` : ''}`)
    .join('; ');
  if (by === 'tunnel') {
    return {
      cause: 'rate_limited_by_tunnel',
      problem: `The tunnel itself rate-limited the event (${code}) ${howLong}${detail ? `: ${detail}` : ''}.`,
      fix: 'Wait and try again; if real traffic hits this limit, raise the tunnel\'s rate limits in its configuration.',
    };
  }
  return {
    cause: 'rate_limited_by_sentry',
    problem: `Sentry rate-limited this project ${howLong}${detail ? `: ${detail}` : ''}; the tunnel only passed Sentry's answer on.`,
    fix: 'Not a tunnel problem: wait, or check the quota and spike protection in Sentry (Settings → Subscription / Usage, and the key\'s rate limit under Client Keys).',
  };
}

interface RateLimit {
  readonly seconds: number;
  readonly categories: readonly string[];
  readonly scope: string | undefined;
  readonly reason: string | undefined;
}

/** X-Sentry-Rate-Limits: `retry_after:categories:scope:reason_code:namespaces`, comma-separated. https://develop.sentry.dev/sdk/expected-features/rate-limiting/ */
export function parseRateLimits(header: string | undefined): RateLimit[] {
  if (!header) return [];
  const limits: RateLimit[] = [];
  for (const entry of header.split(',')) {
    const [seconds = '', categories = '', scope, reason] = entry.trim().split(':');
    if (!/^\d+(\.\d+)?$/.test(seconds)) continue;
    limits.push({ seconds: Number(seconds), categories: categories.split(';').filter(Boolean), scope: scope || undefined, reason: reason || undefined });
  }
  return limits.sort((a, b) => b.seconds - a.seconds);
}

export function parseRetryAfter(header: string | undefined): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.round((date - Date.now()) / 1000));
}

function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
