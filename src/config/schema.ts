// The configuration: one schema (the single source of truth for the type, the defaults and the JSON
// Schema), layered sources (flags > environment > file > defaults), validation that lists every
// problem with its path, and a frozen result.
import { isIP } from 'node:net';
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { normalizeDsn, parseDsn } from '../core/dsn.js';
import { tunnelPaths } from '../core/routes.js';
import { patternProblem } from '../processing/patterns.js';

// zod/mini installs no locale (classic zod installs English by itself): without it every built-in
// message would read "Invalid input". Only English, not z.locales, which would pull in all of them.
z.config(en());

const MiB = 1024 * 1024;
const DSN_HINT = 'copy it from Sentry: Project Settings → Client Keys (DSN), e.g. "https://<publicKey>@o1.ingest.sentry.io/2"';

/**
 * The option's description, for the JSON Schema and for hints (hints.ts reads it from the
 * global registry). Like classic zod's `.describe()` it describes a copy, so a schema used in several
 * places (dsnString, windowLimit) stays undescribed everywhere else.
 */
function described<T extends z.ZodMiniType>(schema: T, description: string): T {
  const copy = schema.clone();
  z.globalRegistry.add(copy, { description });
  return copy;
}

const dsnString = z.string().check(
  z.superRefine((value, ctx) => {
    const parsed = parseDsn(value);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `not a valid DSN: ${parsed.reason}`, params: { hint: DSN_HINT } });
  }),
);

const positiveMs = (fallback: number) => z._default(z.int().check(z.minimum(1, { error: 'must be a whole number of milliseconds ≥ 1' })), fallback);
const byteLimit = (fallback: number) => z._default(z.int().check(z.minimum(1, { error: 'must be a whole number of bytes ≥ 1' })), fallback);

const port = z.int().check(
  z.minimum(0, { error: 'port must be 1–65535 (0 picks a free port)' }),
  z.maximum(65535, { error: 'port must be 1–65535' }),
);
const urlPath = z.string().check(z.regex(/^\/[\w\-./]*$/, { error: 'path must start with "/" and contain only letters, digits, "-", "_", ".", "/"' }));

// /metrics is checked with the metrics settings below: it is free when metrics are off or on their own port.
const tunnelPath = urlPath.check(z.refine((value) => !['/healthz', '/readyz'].includes(value), { error: 'path collides with a built-in endpoint' }));

const cidr = z.string().check(
  z.refine(isCidr, {
    error: (issue) => `not a CIDR or IP address: "${String(issue.input)}"`,
    params: { hint: 'write an address or a range, e.g. "10.0.0.0/8", "192.168.1.10" or "::1/128"' },
  }),
);

/** A fixed-window request budget: at most `max` envelopes per `windowMs`. */
const windowLimit = z.strictObject({
  max: described(z.int().check(z.minimum(1, { error: 'must be a whole number ≥ 1' })), 'Envelopes allowed per window.'),
  windowMs: described(
    z._default(z.int().check(z.minimum(1_000, { error: 'must be at least 1000 ms (Retry-After is given in whole seconds)' })), 60_000),
    'Window length in milliseconds; windows are aligned to the clock so replicas agree on them.',
  ),
});

export const projectSchema = z.strictObject({
  dsn: described(dsnString, 'The project DSN, exactly as in Sentry.init({ dsn }). Envelopes must carry this DSN.'),
  rateLimit: described(z.optional(windowLimit), "This project's envelope budget (protects its Sentry quota); none by default."),
});

const pattern = z.string().check(
  z.superRefine((value, ctx) => {
    const problem = patternProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
);
const patterns = (what: string) =>
  described(z._default(z.array(pattern), []), `Drop the event when ${what} contains one of these strings or matches one of these /regex/flags.`);

/** Which events a filter drops: any listed field matching drops the event (the fields are alternatives, not all required). */
export const dropEventsSchema = z.strictObject({
  message: patterns('its message (message, logentry, or an exception\'s "Type: value")'),
  exceptionType: patterns('one of its exception types'),
  environment: patterns('its environment'),
  release: patterns('its release'),
  level: patterns('its level ("error" when the SDK sent none)'),
  userAgent: patterns("the browser's User-Agent (the event's request headers, else the request's)"),
});

export const filterSchema = z
  .strictObject({
    dropItemTypes: described(
      z.optional(z.array(z.string().check(z.minLength(1)))),
      'Drop envelope items of these exact types, e.g. "client_report", "replay_recording".',
    ),
    dropEvents: described(z.optional(dropEventsSchema), 'Drop event and transaction items that match.'),
  })
  .check(
    z.refine((rule) => rule.dropItemTypes !== undefined || rule.dropEvents !== undefined, {
      error: 'a filter needs "dropItemTypes" or "dropEvents"',
    }),
  );

/** Sentry's tag rules: https://docs.sentry.io/platforms/javascript/enriching-events/tags/ */
const tagKey = z.string().check(z.regex(/^[\w.:-]{1,32}$/, { error: 'tag keys are 1–32 letters, digits, "_", ".", ":", "-"' }));
const tagValue = z
  .string()
  .check(
    z.minLength(1, { error: 'tag values must not be empty' }),
    z.maxLength(200, { error: 'tag values are at most 200 characters' }),
    z.refine((value) => !value.includes('\n'), { error: 'tag values must not contain a newline' }),
  );

export const enrichSchema = z.strictObject({
  tags: described(z._default(z.record(tagKey, tagValue), {}), 'Tags added to event and transaction items; ${VAR} reads the environment at start-up.'),
  overrideTags: described(z._default(z.boolean(), false), "false: a tag the SDK already set wins; true: the configured value replaces it."),
  clientIp: described(
    z._default(z.boolean(), false),
    "Set user.ip_address on event and transaction items to the client's address (personal data; opt-in).",
  ),
});

export const configSchema = z
  .strictObject({
    $schema: described(z.optional(z.string()), 'Editor hint only; ignored.'),
    server: z.prefault(
      z.strictObject({
        host: described(z._default(z.string().check(z.minLength(1)), '127.0.0.1'), 'Address to listen on; "0.0.0.0" or "::" for every interface.'),
        port: described(
          z._default(port, 8080),
          'Port to listen on; 0 picks a free port.',
        ),
        path: described(
          z._default(z.union([tunnelPath, z.array(tunnelPath).check(z.minLength(1, { error: 'list at least one path' }), z.refine(unique, { error: 'lists a path twice' }))]), '/tunnel'),
          'URL path the SDK posts envelopes to, or a list of paths (the first is canonical; the others keep old clients working while they move); {path}/{project} selects one project.',
        ),
        trustProxy: described(
          z._default(z.union([z.boolean(), z.array(cidr)]), false),
          'false: the peer is the client; true: trust X-Forwarded-For; a list: trust these proxy CIDRs.',
        ),
        drainDelayMs: described(
          z._default(z.int().check(z.minimum(0, { error: 'must be a whole number of milliseconds ≥ 0' })), 5_000),
          'On SIGTERM/SIGINT, how long /readyz answers 503 while the listener still serves, so load balancers stop sending first; 0 closes at once.',
        ),
        shutdownTimeoutMs: described(positiveMs(10_000), 'How long in-flight requests may take to finish on SIGTERM/SIGINT.'),
        headersTimeoutMs: described(positiveMs(10_000), 'A client must send its request headers within this time.'),
        requestTimeoutMs: described(positiveMs(60_000), 'A client must send its whole request within this time (checked every tenth of it, at most every second).'),
      }),
      {},
    ),
    projects: described(
      z
        .record(z.string().check(z.regex(/^[\w-]+$/, { error: 'project names may contain only letters, digits, "-" and "_"' })), projectSchema)
        .check(
          z.refine((projects) => Object.keys(projects).length > 0, {
            error: 'at least one project is required',
            params: { hint: 'add "projects": { "web": { "dsn": "https://<key>@o1.ingest.sentry.io/2" } }, or pass --dsn' },
          }),
        ),
      'Project name → DSN. Only these projects are forwarded to.',
    ),
    cors: z.prefault(
      z.strictObject({
        origins: described(
          z._default(z.union([z.literal('*'), z.array(z.url({ error: 'not an origin such as "https://app.example.com"' })), z.literal(false)]), '*'),
          '"*" any origin; a list of exact origins; false: no CORS headers at all.',
        ),
      }),
      {},
    ),
    limits: z.prefault(
      z.strictObject({
        maxEnvelopeBytes: described(byteLimit(20 * MiB), 'Largest request body on the wire (compressed), in bytes.'),
        maxDecodedBytes: described(byteLimit(100 * MiB), 'Largest request body after decompression, in bytes.'),
        maxHeaderLineBytes: described(byteLimit(64 * 1024), 'Longest envelope header line, in bytes.'),
      }),
      {},
    ),
    upstream: z.prefault(
      z.strictObject({
        timeoutMs: described(positiveMs(10_000), 'Sentry must answer within this time, or the client gets 504.'),
        connectTimeoutMs: described(positiveMs(3_000), 'Connecting to Sentry must succeed within this time.'),
        maxConnections: described(z._default(z.int().check(z.minimum(1)), 128), 'Keep-alive connections per Sentry host.'),
        forwardClientIp: described(z._default(z.boolean(), true), 'Send the client address to Sentry in X-Forwarded-For.'),
      }),
      {},
    ),
    spool: described(
      z.prefault(
        z.strictObject({
          dir: described(
            z.optional(z.string().check(z.minLength(1))),
            'Directory for envelopes Sentry could not take yet (resolved from the working directory). The spool is off unless set.',
          ),
          maxBytes: described(byteLimit(500 * MiB), 'Disk the spool may use, copies of large bodies in flight included; when full, envelopes that would need spooling are answered 503 spool_full.'),
          maxAgeMs: described(positiveMs(24 * 60 * 60 * 1000), 'Spooled envelopes older than this are deleted undelivered, with a log line.'),
          retry: z.prefault(
            z.strictObject({
              initialMs: described(positiveMs(1_000), 'First wait before re-sending after a failure.'),
              maxMs: described(positiveMs(60_000), 'Longest wait between re-sends (Sentry\'s Retry-After may ask for longer).'),
            }),
            {},
          ),
        }),
        {},
      ),
      'The on-disk spool: nothing is lost while Sentry is unreachable.',
    ),
    rateLimit: z.prefault(
      z.strictObject({
        perClient: described(
          z._default(z.union([windowLimit, z.literal(false)]), { max: 300, windowMs: 60_000 }),
          'Envelopes one client address may send per window; false: no per-client limit.',
        ),
        maxConcurrent: described(z._default(z.int().check(z.minimum(1)), 100), 'Requests to Sentry in flight at once (per tunnel process).'),
        maxQueued: described(
          z._default(z.int().check(z.minimum(0)), 1000),
          'Requests that may wait for a free upstream slot; beyond that the answer is 503 overloaded.',
        ),
        redis: described(
          z.optional(
            z.strictObject({
              url: described(
                z.url({ protocol: /^rediss?$/, error: 'not a Redis URL such as "redis://127.0.0.1:6379"' }),
                'redis:// or rediss:// URL; user and password may be part of it.',
              ),
              keyPrefix: described(
                z._default(z.string().check(z.regex(/^[\w.-]+$/, { error: 'may contain only letters, digits, ".", "-" and "_"' })), 'sentry-tunnel'),
                'Prefix of every Redis key and channel; tunnels sharing a prefix share limits.',
              ),
              timeoutMs: described(positiveMs(500), 'A Redis command must answer within this time, or local limits decide.'),
            }),
          ),
          'Share limits across replicas through Redis; without it every process limits alone.',
        ),
      }),
      {},
    ),
    metrics: z.prefault(
      z.strictObject({
        enabled: described(z._default(z.boolean(), true), 'Serve Prometheus metrics.'),
        path: described(
          z._default(urlPath, '/metrics'),
          'URL path of the Prometheus exposition.',
        ),
        port: described(
          z._default(z.nullable(port), null),
          'null: serve metrics on server.port; a port: serve them only there, on server.host.',
        ),
      }),
      {},
    ),
    selfMonitoring: z.prefault(
      z.strictObject({
        dsn: described(
          z._default(z.union([z.literal(''), dsnString]), ''),
          'DSN of a separate Sentry project for the tunnel\'s own unexpected errors; "" (the default) turns it off.',
        ),
        environment: described(z._default(z.string().check(z.minLength(1)), 'production'), 'The environment those events carry.'),
        maxEventsPerMinute: described(
          z._default(z.int().check(z.minimum(1)), 10),
          'At most this many events per minute; more are dropped (and counted).',
        ),
      }),
      {},
    ),
    filters: described(z._default(z.array(filterSchema), []), 'Rules that drop envelope items before they reach Sentry, in order.'),
    enrich: described(z.prefault(enrichSchema, {}), 'Server-side context added to events and transactions.'),
    log: z.prefault(
      z.strictObject({
        level: described(z._default(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'), 'Lowest level logged.'),
        format: described(z._default(z.enum(['auto', 'json', 'pretty']), 'auto'), '"auto": pretty on a TTY, JSON otherwise.'),
        requests: described(
          z._default(z.enum(['summary', 'all', 'off']), 'summary'),
          '"summary": a line per request answered 5xx or spooled, and a summary line of the rest every log.summaryIntervalMs (health probes and metrics scrapes left out); "all": a line per request, probes included; "off": none.',
        ),
        summaryIntervalMs: described(positiveMs(60_000), 'How often the "summary" request log writes its summary line.'),
      }),
      {},
    ),
  })
  .check(
    z.superRefine((config, ctx) => {
      if (config.spool.retry.maxMs < config.spool.retry.initialMs) {
        ctx.addIssue({ code: 'custom', path: ['spool', 'retry', 'maxMs'], message: 'must be at least spool.retry.initialMs' });
      }
      const { metrics, server } = config;
      if (metrics.enabled && metrics.port === null) {
        const collides = (path: string) => metrics.path === path || metrics.path.startsWith(`${path}/`);
        if (['/healthz', '/readyz'].includes(metrics.path) || tunnelPaths(server.path).some(collides)) {
          ctx.addIssue({ code: 'custom', path: ['metrics', 'path'], message: 'collides with server.path or a health endpoint on the same port' });
        }
      }
      if (metrics.enabled && metrics.port !== null && metrics.port !== 0 && metrics.port === server.port) {
        ctx.addIssue({ code: 'custom', path: ['metrics', 'port'], message: 'must differ from server.port (null serves metrics on server.port)' });
      }
      if (config.limits.maxDecodedBytes < config.limits.maxEnvelopeBytes) {
        ctx.addIssue({
          code: 'custom',
          path: ['limits', 'maxDecodedBytes'],
          message: `must be at least limits.maxEnvelopeBytes (${config.limits.maxEnvelopeBytes})`,
          params: { hint: 'decompressing never makes a body smaller' },
        });
      }
    }),
    // Duplicate DSNs are checked even when other fields are wrong, so one run lists them with every
    // other problem; the values may therefore be of any shape here.
    z.superRefine(
      (config, ctx) => {
        const { projects } = config as { projects?: unknown };
        const seen = new Map<string, string>();
        for (const [name, project] of Object.entries(projects !== null && typeof projects === 'object' ? projects : {})) {
          const dsn = (project as { dsn?: unknown } | null)?.dsn;
          const parsed = typeof dsn === 'string' ? parseDsn(dsn) : undefined;
          if (!parsed?.ok) continue;
          const key = normalizeDsn(parsed.dsn);
          const other = seen.get(key);
          if (other !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: ['projects', name, 'dsn'],
              message: `duplicate DSN also used by project "${other}"`,
              params: { hint: 'a DSN can belong to one project only: remove one of them' },
            });
          } else seen.set(key, name);
        }
      },
      { when: (payload) => payload.value !== null && typeof payload.value === 'object' },
    ),
  );

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

function unique(values: readonly string[]): boolean {
  return new Set(values).size === values.length;
}

function isCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}
