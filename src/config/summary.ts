// What a valid configuration makes the tunnel do, for check-config: the listen address and routes,
// each project's upstream endpoint, and every other setting — with keys and passwords redacted.
import type { Config } from './schema.js';
import { parseDsn, redactDsn, redactedEnvelopeUrl } from '../core/dsn.js';
import { canonicalPath, tunnelPaths } from '../core/routes.js';
import { formatBytes } from './warnings.js';

export interface ConfigSummary {
  /** The file used, or null when everything came from flags and environment. */
  readonly file: string | null;
  /** `path` and `url` are the canonical (first) path's; `paths` every configured one. */
  readonly listen: { readonly host: string; readonly port: number; readonly path: string; readonly paths: readonly string[]; readonly url: string };
  readonly routes: readonly { readonly method: string; readonly path: string; readonly what: string }[];
  readonly projects: readonly { readonly name: string; readonly dsn: string; readonly envelopeUrl: string; readonly rateLimit?: { readonly max: number; readonly windowMs: number } }[];
  /** Every other section, effective values (defaults filled in), secrets redacted. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** Sections shown in their own part of the summary, not under settings. */
const SHOWN_APART = new Set(['$schema', 'projects']);
const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|credential/i;

export function summarizeConfig(config: Config, file: string | undefined): ConfigSummary {
  const { host, port } = config.server;
  const paths = tunnelPaths(config.server.path);
  const path = canonicalPath(config.server.path);
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const routes = [
    ...paths.flatMap((tunnelPath, index) => {
      const also = index === 0 ? '' : ` (also: server.path.${index})`;
      return [
        { method: 'POST', path: tunnelPath, what: `envelopes for any configured project${also}` },
        { method: 'POST', path: `${tunnelPath}/{project}`, what: `envelopes for that project only (${Object.keys(config.projects).join(', ')})${also}` },
        ...(config.cors.origins === false ? [] : [{ method: 'OPTIONS', path: tunnelPath, what: `CORS preflight${also}` }]),
      ];
    }),
    { method: 'GET', path: '/healthz', what: 'liveness' },
    { method: 'GET', path: '/readyz', what: 'readiness (503 while not taking traffic)' },
    ...metricsRoute(config),
  ];
  const projects = Object.entries(config.projects).map(([name, { dsn, rateLimit }]) => {
    const parsed = parseDsn(dsn);
    const shown = parsed.ok
      ? { name, dsn: redactDsn(parsed.dsn), envelopeUrl: redactedEnvelopeUrl(parsed.dsn) }
      : { name, dsn: '(invalid)', envelopeUrl: '(invalid)' };
    return rateLimit ? { ...shown, rateLimit } : shown;
  });
  const settings: Record<string, unknown> = {};
  for (const [section, value] of Object.entries(config)) {
    if (SHOWN_APART.has(section)) continue;
    if (section === 'server') {
      const { host: _host, port: _port, path: _path, ...rest } = config.server;
      settings.server = redact(rest);
    } else settings[section] = redact(value);
  }
  return { file: file ?? null, listen: { host, port, path, paths, url: `http://${hostInUrl}:${port}${path}` }, routes, projects, settings };
}

function metricsRoute({ metrics, server }: Config): ConfigSummary['routes'] {
  if (!metrics.enabled) return [];
  const where = metrics.port === null ? '' : ` (on its own port ${metrics.port === 0 ? '(free port)' : metrics.port}, ${server.host})`;
  return [{ method: 'GET', path: metrics.path, what: `Prometheus metrics${where}` }];
}

/** The summary as the lines a person reads. */
export function formatSummary(summary: ConfigSummary): string[] {
  const lines = [`listen    ${summary.listen.url}${summary.listen.port === 0 ? '  (port 0: a free port is picked at start)' : ''}`, 'routes'];
  const width = Math.max(...summary.routes.map((route) => route.method.length + 1 + route.path.length));
  for (const route of summary.routes) lines.push(`  ${`${route.method} ${route.path}`.padEnd(width)}  ${route.what}`);
  lines.push('projects');
  for (const project of summary.projects) {
    const budget = project.rateLimit ? `  (at most ${project.rateLimit.max} envelopes per ${formatDuration(project.rateLimit.windowMs)})` : '';
    lines.push(`  ${project.name} → ${project.envelopeUrl}${budget}`);
  }
  const flat = flatten(summary.settings);
  const keyWidth = Math.max(0, ...flat.map(([key]) => key.length));
  if (flat.length > 0) lines.push('settings');
  for (const [key, value] of flat) lines.push(`  ${key.padEnd(keyWidth)}  ${formatValue(key, value)}`);
  return lines;
}

function flatten(value: unknown, prefix = ''): [string, unknown][] {
  // A list of objects (filter rules) reads best one rule, one field per line.
  if (Array.isArray(value) && value.length > 0 && value.every((item) => item !== null && typeof item === 'object' && !Array.isArray(item))) {
    return value.flatMap((item, index) => flatten(item, `${prefix}.${index}`));
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [[prefix, value]];
  const entries = Object.entries(value);
  if (entries.length === 0) return prefix ? [[prefix, '{}']] : [];
  return entries.flatMap(([key, item]) => flatten(item, prefix ? `${prefix}.${key}` : key));
}

function formatValue(key: string, value: unknown): string {
  if (key === 'server.trustProxy' && value === false) return 'false (behind a reverse proxy, set it to the proxy\'s address, or every visitor shares one per-client budget)';
  if (typeof value === 'number') {
    if (/bytes$/i.test(key) && value >= 1024) return `${value} (${formatBytes(value)})`;
    if (/ms$/i.test(key) && value >= 1000) return `${value} (${formatDuration(value)})`;
    return String(value);
  }
  if (typeof value === 'string') return key === '' ? value : JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 0 ? '[]' : value.map((item) => (typeof item === 'string' ? item : JSON.stringify(item))).join(', ');
  return JSON.stringify(value) ?? String(value);
}

function formatDuration(ms: number): string {
  const units: [number, string][] = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  return `${ms / 1000} s`;
}

/** Copies a settings value with DSN keys, URL passwords and secret-named fields redacted. */
export function redact(value: unknown, key = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_KEY.test(key) && value !== '') return 'REDACTED';
    return redactString(value);
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, key));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, redact(item, name)]));
  }
  return value;
}

function redactString(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(value)) return value;
  const dsn = parseDsn(value);
  if (dsn.ok) return redactDsn(dsn.dsn);
  try {
    const url = new URL(value);
    if (url.password) url.password = 'REDACTED';
    else if (url.username) url.username = 'REDACTED';
    return url.toString();
  } catch {
    return value.replace(/\/\/[^/]*@/, '//REDACTED@');
  }
}
