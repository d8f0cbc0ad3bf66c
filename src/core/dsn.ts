// Sentry DSN parsing, normalising and the upstream envelope URL, as the SDKs do it.
// Spec: https://develop.sentry.dev/sdk/overview/#parsing-the-dsn — the reference implementation is
// @sentry/core's dsnFromString/makeDsn (test/dsn.test.ts checks that both agree). We parse ourselves
// only to say *why* a DSN is invalid, which check-config needs and @sentry/core does not tell.

export interface Dsn {
  readonly protocol: 'http' | 'https';
  readonly publicKey: string;
  readonly host: string;
  /** Empty when the protocol's default port. */
  readonly port: string;
  /** Path prefix without leading or trailing slash ("" for SaaS DSNs). */
  readonly path: string;
  readonly projectId: string;
}

export type DsnParseResult = { ok: true; dsn: Dsn } | { ok: false; reason: string };

const DSN_PATTERN = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/:?#]*)(?::([^/?#]*))?(\/[^?#]*)?$/;
const DEFAULT_PORTS = { http: '80', https: '443' } as const;

export function parseDsn(input: string): DsnParseResult {
  const match = DSN_PATTERN.exec(input.trim());
  if (!match) return { ok: false, reason: 'expected {protocol}://{publicKey}@{host}[:{port}][/{path}]/{projectId}' };
  const [, rawProtocol = '', publicKey = '', , rawHost = '', rawPort, rawPath = ''] = match;
  const protocol = rawProtocol.toLowerCase();
  if (protocol !== 'http' && protocol !== 'https') return { ok: false, reason: `protocol must be http or https, not "${protocol}"` };
  if (!publicKey) return { ok: false, reason: 'missing public key' };
  if (!/^\w+$/.test(publicKey)) return { ok: false, reason: 'public key may contain only letters, digits and "_"' };
  if (!rawHost) return { ok: false, reason: 'missing host' };
  if (!/^[\w.-]+$/.test(rawHost)) return { ok: false, reason: `invalid host "${rawHost}"` };
  let port = rawPort ?? '';
  if (rawPort !== undefined && !/^\d{1,5}$/.test(rawPort)) return { ok: false, reason: `invalid port "${rawPort}"` };
  if (port === DEFAULT_PORTS[protocol]) port = '';
  const segments = rawPath.split('/').filter((segment) => segment !== '');
  const projectId = segments.pop();
  if (!projectId) return { ok: false, reason: 'missing project id' };
  if (!/^\d+$/.test(projectId)) return { ok: false, reason: `project id must be a number, not "${projectId}"` };
  return {
    ok: true,
    dsn: { protocol, publicKey, host: rawHost.toLowerCase(), port, path: segments.join('/'), projectId },
  };
}

function origin(dsn: Dsn): string {
  return `${dsn.protocol}://${dsn.host}${dsn.port ? `:${dsn.port}` : ''}`;
}

/** The canonical form two equal DSNs share (secret dropped, host lower-cased, default port removed). */
export function normalizeDsn(dsn: Dsn): string {
  return `${dsn.protocol}://${dsn.publicKey}@${dsn.host}${dsn.port ? `:${dsn.port}` : ''}${dsn.path ? `/${dsn.path}` : ''}/${dsn.projectId}`;
}

/** The DSN with its public key shortened, for logs and console output. */
export function redactDsn(dsn: Dsn): string {
  return normalizeDsn({ ...dsn, publicKey: `${dsn.publicKey.slice(0, 4)}…` });
}

export interface UpstreamTarget {
  /** scheme://host[:port], the key of the upstream connection pool. */
  readonly origin: string;
  /** Path and query of the envelope endpoint, authenticated like Sentry's tunnel helper. */
  readonly path: string;
}

/** The ingest envelope endpoint of a DSN: {origin}{/path}/api/{projectId}/envelope/?sentry_version=7&sentry_key=… */
export function envelopeTarget(dsn: Dsn): UpstreamTarget {
  const prefix = dsn.path ? `/${dsn.path}` : '';
  return {
    origin: origin(dsn),
    path: `${prefix}/api/${dsn.projectId}/envelope/?sentry_version=7&sentry_key=${encodeURIComponent(dsn.publicKey)}`,
  };
}

/** The envelope endpoint with the key redacted, for output a person reads. */
export function redactedEnvelopeUrl(dsn: Dsn): string {
  const target = envelopeTarget({ ...dsn, publicKey: 'REDACTED' });
  return `${target.origin}${target.path}`;
}
