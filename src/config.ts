// The configuration: one schema (the single source of truth for the type, the defaults and the JSON
// Schema), layered sources (flags > environment > file > defaults), validation that lists every
// problem with its path, and a frozen result.
import { isIP } from 'node:net';
import { z } from 'zod';
import { normalizeDsn, parseDsn } from './dsn.js';
import { patternProblem } from './patterns.js';

const MiB = 1024 * 1024;
const DSN_HINT = 'copy it from Sentry: Project Settings → Client Keys (DSN), e.g. "https://<publicKey>@o1.ingest.sentry.io/2"';

const dsnString = z.string().superRefine((value, ctx) => {
  const parsed = parseDsn(value);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `not a valid DSN: ${parsed.reason}`, params: { hint: DSN_HINT } });
});

const positiveMs = (fallback: number) => z.int().min(1, { error: 'must be a whole number of milliseconds ≥ 1' }).default(fallback);
const byteLimit = (fallback: number) => z.int().min(1, { error: 'must be a whole number of bytes ≥ 1' }).default(fallback);

const cidr = z.string().refine(isCidr, {
  error: (issue) => `not a CIDR or IP address: "${String(issue.input)}"`,
  params: { hint: 'write an address or a range, e.g. "10.0.0.0/8", "192.168.1.10" or "::1/128"' },
});

/** A fixed-window request budget: at most `max` envelopes per `windowMs`. */
const windowLimit = z.strictObject({
  max: z.int().min(1, { error: 'must be a whole number ≥ 1' }).describe('Envelopes allowed per window.'),
  windowMs: z
    .int()
    .min(1_000, { error: 'must be at least 1000 ms (Retry-After is given in whole seconds)' })
    .default(60_000)
    .describe('Window length in milliseconds; windows are aligned to the clock so replicas agree on them.'),
});

export const projectSchema = z.strictObject({
  dsn: dsnString.describe('The project DSN, exactly as in Sentry.init({ dsn }). Envelopes must carry this DSN.'),
  rateLimit: windowLimit.optional().describe("This project's envelope budget (protects its Sentry quota); none by default."),
});

const pattern = z.string().superRefine((value, ctx) => {
  const problem = patternProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const patterns = (what: string) =>
  z.array(pattern).default([]).describe(`Drop the event when ${what} contains one of these strings or matches one of these /regex/flags.`);

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
    dropItemTypes: z
      .array(z.string().min(1))
      .optional()
      .describe('Drop envelope items of these exact types, e.g. "client_report", "replay_recording".'),
    dropEvents: dropEventsSchema.optional().describe('Drop event and transaction items that match.'),
  })
  .refine((rule) => rule.dropItemTypes !== undefined || rule.dropEvents !== undefined, {
    error: 'a filter needs "dropItemTypes" or "dropEvents"',
  });

/** Sentry's tag rules: https://docs.sentry.io/platforms/javascript/enriching-events/tags/ */
const tagKey = z.string().regex(/^[\w.:-]{1,32}$/, { error: 'tag keys are 1–32 letters, digits, "_", ".", ":", "-"' });
const tagValue = z
  .string()
  .min(1, { error: 'tag values must not be empty' })
  .max(200, { error: 'tag values are at most 200 characters' })
  .refine((value) => !value.includes('\n'), { error: 'tag values must not contain a newline' });

export const enrichSchema = z.strictObject({
  tags: z.record(tagKey, tagValue).default({}).describe('Tags added to event and transaction items; ${VAR} reads the environment at start-up.'),
  overrideTags: z.boolean().default(false).describe("false: a tag the SDK already set wins; true: the configured value replaces it."),
  clientIp: z
    .boolean()
    .default(false)
    .describe("Set user.ip_address on event and transaction items to the client's address (personal data; opt-in)."),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Editor hint only; ignored.'),
    server: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1').describe('Address to listen on; "0.0.0.0" or "::" for every interface.'),
        port: z
          .int()
          .min(0, { error: 'port must be 1–65535 (0 picks a free port)' })
          .max(65535, { error: 'port must be 1–65535' })
          .default(8080)
          .describe('Port to listen on; 0 picks a free port.'),
        path: z
          .string()
          .regex(/^\/[\w\-./]*$/, { error: 'path must start with "/" and contain only letters, digits, "-", "_", ".", "/"' })
          .refine((value) => !['/healthz', '/readyz', '/metrics'].includes(value), { error: 'path collides with a built-in endpoint' })
          .default('/tunnel')
          .describe('URL path the SDK posts envelopes to; {path}/{project} selects one project.'),
        trustProxy: z
          .union([z.boolean(), z.array(cidr)])
          .default(false)
          .describe('false: the peer is the client; true: trust X-Forwarded-For; a list: trust these proxy CIDRs.'),
        shutdownTimeoutMs: positiveMs(10_000).describe('How long in-flight requests may take to finish on SIGTERM/SIGINT.'),
        headersTimeoutMs: positiveMs(10_000).describe('A client must send its request headers within this time.'),
        requestTimeoutMs: positiveMs(60_000).describe('A client must send its whole request within this time.'),
      })
      .prefault({}),
    projects: z
      .record(
        z.string().regex(/^[\w-]+$/, { error: 'project names may contain only letters, digits, "-" and "_"' }),
        projectSchema,
      )
      .refine((projects) => Object.keys(projects).length > 0, {
        error: 'at least one project is required',
        params: { hint: 'add "projects": { "web": { "dsn": "https://<key>@o1.ingest.sentry.io/2" } }, or pass --dsn' },
      })
      .describe('Project name → DSN. Only these projects are forwarded to.'),
    cors: z
      .strictObject({
        origins: z
          .union([z.literal('*'), z.array(z.url({ error: 'not an origin such as "https://app.example.com"' })), z.literal(false)])
          .default('*')
          .describe('"*" any origin; a list of exact origins; false: no CORS headers at all.'),
      })
      .prefault({}),
    limits: z
      .strictObject({
        maxEnvelopeBytes: byteLimit(20 * MiB).describe('Largest request body on the wire (compressed), in bytes.'),
        maxDecodedBytes: byteLimit(100 * MiB).describe('Largest request body after decompression, in bytes.'),
        maxHeaderLineBytes: byteLimit(64 * 1024).describe('Longest envelope header line, in bytes.'),
      })
      .prefault({}),
    upstream: z
      .strictObject({
        timeoutMs: positiveMs(10_000).describe('Sentry must answer within this time, or the client gets 504.'),
        connectTimeoutMs: positiveMs(3_000).describe('Connecting to Sentry must succeed within this time.'),
        maxConnections: z.int().min(1).default(128).describe('Keep-alive connections per Sentry host.'),
        forwardClientIp: z.boolean().default(true).describe('Send the client address to Sentry in X-Forwarded-For.'),
      })
      .prefault({}),
    spool: z
      .strictObject({
        dir: z
          .string()
          .min(1)
          .optional()
          .describe('Directory for envelopes Sentry could not take yet (resolved from the working directory). The spool is off unless set.'),
        maxBytes: byteLimit(500 * MiB).describe('Disk the spool may use; when full, envelopes that would need spooling are answered 503 spool_full.'),
        maxAgeMs: positiveMs(24 * 60 * 60 * 1000).describe('Spooled envelopes older than this are deleted undelivered, with a log line.'),
        retry: z
          .strictObject({
            initialMs: positiveMs(1_000).describe('First wait before re-sending after a failure.'),
            maxMs: positiveMs(60_000).describe('Longest wait between re-sends (Sentry\'s Retry-After may ask for longer).'),
          })
          .prefault({}),
      })
      .prefault({})
      .describe('The on-disk spool: nothing is lost while Sentry is unreachable.'),
    rateLimit: z
      .strictObject({
        perClient: z
          .union([windowLimit, z.literal(false)])
          .default({ max: 300, windowMs: 60_000 })
          .describe('Envelopes one client address may send per window; false: no per-client limit.'),
        maxConcurrent: z.int().min(1).default(100).describe('Requests to Sentry in flight at once (per tunnel process).'),
        maxQueued: z
          .int()
          .min(0)
          .default(1000)
          .describe('Requests that may wait for a free upstream slot; beyond that the answer is 503 overloaded.'),
        redis: z
          .strictObject({
            url: z
              .url({ protocol: /^rediss?$/, error: 'not a Redis URL such as "redis://127.0.0.1:6379"' })
              .describe('redis:// or rediss:// URL; user and password may be part of it.'),
            keyPrefix: z
              .string()
              .regex(/^[\w.-]+$/, { error: 'may contain only letters, digits, ".", "-" and "_"' })
              .default('sentry-tunnel')
              .describe('Prefix of every Redis key and channel; tunnels sharing a prefix share limits.'),
            timeoutMs: positiveMs(500).describe('A Redis command must answer within this time, or local limits decide.'),
          })
          .optional()
          .describe('Share limits across replicas through Redis; without it every process limits alone.'),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Serve Prometheus metrics.'),
        path: z
          .string()
          .regex(/^\/[\w\-./]*$/, { error: 'path must start with "/" and contain only letters, digits, "-", "_", ".", "/"' })
          .default('/metrics')
          .describe('URL path of the Prometheus exposition.'),
        port: z
          .int()
          .min(0, { error: 'port must be 1–65535 (0 picks a free port)' })
          .max(65535, { error: 'port must be 1–65535' })
          .nullable()
          .default(null)
          .describe('null: serve metrics on server.port; a port: serve them only there, on server.host.'),
      })
      .prefault({}),
    selfMonitoring: z
      .strictObject({
        dsn: z
          .union([z.literal(''), dsnString])
          .default('')
          .describe('DSN of a separate Sentry project for the tunnel\'s own unexpected errors; "" (the default) turns it off.'),
        environment: z.string().min(1).default('production').describe('The environment those events carry.'),
        maxEventsPerMinute: z.int().min(1).default(10).describe('At most this many events per minute; more are dropped (and counted).'),
      })
      .prefault({}),
    filters: z.array(filterSchema).default([]).describe('Rules that drop envelope items before they reach Sentry, in order.'),
    enrich: enrichSchema.prefault({}).describe('Server-side context added to events and transactions.'),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Lowest level logged.'),
        format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('"auto": pretty on a TTY, JSON otherwise.'),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    if (config.spool.retry.maxMs < config.spool.retry.initialMs) {
      ctx.addIssue({ code: 'custom', path: ['spool', 'retry', 'maxMs'], message: 'must be at least spool.retry.initialMs' });
    }
    const { metrics, server } = config;
    if (metrics.enabled && metrics.port === null) {
      if (['/healthz', '/readyz'].includes(metrics.path) || metrics.path === server.path || metrics.path.startsWith(`${server.path}/`)) {
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
  })
  // Duplicate DSNs are checked even when other fields are wrong, so one run lists them with every
  // other problem; the values may therefore be of any shape here.
  .superRefine(
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
  );

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

function isCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}
