// Things a valid configuration allows but that are probably wrong; check-config shows them, and
// `--strict` fails on them.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { Config } from './schema.js';
import { parseDsn } from '../core/dsn.js';
import type { ConfigProblem } from './problems.js';
import { blockedPathWarnings } from './ad-blockers.js';
import { spoolDirProblem } from '../spool/files.js';

const MiB = 1024 * 1024;

/**
 * Sentry's own ingest limits, so a tunnel limit above them only lets through what Sentry then refuses
 * with 413. Sources: docs.sentry.io (attachments pages: "at most 20MB for a compressed request";
 * concepts/data-management/size-limits) and Relay's defaults in relay-config/src/config.rs
 * (`max_envelope_size: ByteSize::mebibytes(200)`, the whole envelope after decompression).
 */
export const SENTRY_INGEST_LIMITS = {
  compressedRequestBytes: 20 * MiB,
  envelopeBytes: 200 * MiB,
} as const;

export function configWarnings(config: Config): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];

  const dsns: [path: string, dsn: string][] = Object.entries(config.projects).map(([name, { dsn }]) => [`projects.${name}.dsn`, dsn]);
  if (config.selfMonitoring.dsn) dsns.push(['selfMonitoring.dsn', config.selfMonitoring.dsn]);
  for (const [path, dsn] of dsns) {
    const parsed = parseDsn(dsn);
    if (parsed.ok && parsed.dsn.protocol === 'http' && !isLoopbackHost(parsed.dsn.host)) {
      warnings.push({
        path,
        message: `plain http to ${parsed.dsn.host}: error reports and the user data in them cross the network unencrypted`,
        hint: 'use the https:// DSN if your Sentry serves TLS',
      });
    }
  }

  warnings.push(...blockedPathWarnings(config.server.path, Object.keys(config.projects)));

  if (config.server.trustProxy === true) {
    warnings.push({
      path: 'server.trustProxy',
      message: 'true believes X-Forwarded-For from anyone who can reach the tunnel, so clients can fake their address',
      hint: 'list your proxies instead, e.g. "trustProxy": ["127.0.0.1/32", "10.0.0.0/8"]',
    });
  }

  const { limits } = config;
  if (limits.maxEnvelopeBytes > SENTRY_INGEST_LIMITS.compressedRequestBytes) {
    warnings.push({
      path: 'limits.maxEnvelopeBytes',
      message: `${formatBytes(limits.maxEnvelopeBytes)} is above Sentry's ${formatBytes(SENTRY_INGEST_LIMITS.compressedRequestBytes)} limit for a compressed request: Sentry answers 413 to anything larger`,
      hint: `set it to ${SENTRY_INGEST_LIMITS.compressedRequestBytes} or less`,
    });
  }
  if (limits.maxDecodedBytes > SENTRY_INGEST_LIMITS.envelopeBytes) {
    warnings.push({
      path: 'limits.maxDecodedBytes',
      message: `${formatBytes(limits.maxDecodedBytes)} is above Sentry's ${formatBytes(SENTRY_INGEST_LIMITS.envelopeBytes)} limit for a decompressed envelope: Sentry answers 413 to anything larger`,
      hint: `set it to ${SENTRY_INGEST_LIMITS.envelopeBytes} or less`,
    });
  }
  return warnings;
}

/**
 * Warnings about this machine rather than the file: a spool.dir serve could not use. A warning, not an
 * error, because the directory may be mounted or created only on the machine that runs serve.
 */
export async function machineWarnings(config: Config): Promise<ConfigProblem[]> {
  if (config.spool.dir === undefined) return [];
  const dir = resolve(config.spool.dir);
  const problem = await spoolDirProblem(dir);
  if (!problem) return [];
  return [
    {
      path: 'spool.dir',
      message: `${dir} cannot be used here: ${problem}; serve would refuse to start`,
      hint: 'create it, writable by the user that runs serve (or point spool.dir elsewhere)',
    },
  ];
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1' || bare === '::ffff:127.0.0.1';
}

export function formatBytes(bytes: number): string {
  if (bytes >= MiB && bytes % (MiB / 4) === 0) return `${bytes / MiB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
