// The daemon's own endpoints: /healthz (the process answers), /readyz (it takes traffic: not shutting
// down, spool not full) and the Prometheus exposition at metrics.path.
import type { Answer, Exchange } from '../core/exchange.js';
import { JSON_CONTENT_TYPE, type Lifecycle } from '../core/pipeline.js';
import { TunnelError } from '../errors.js';
import type { MetricsEndpoint } from '../observability/metrics.js';
import type { SpoolStats } from '../spool/spool.js';

export const HEALTH_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

const GET_ONLY = { message: 'Method not allowed; use GET.', headers: { allow: 'GET, HEAD' } };

export function health(lifecycle: Lifecycle, spool: { stats(): SpoolStats } | undefined) {
  return async ({ inbound }: Exchange): Promise<Answer> => {
    if (inbound.method !== 'GET' && inbound.method !== 'HEAD') throw new TunnelError('method_not_allowed', GET_ONLY);
    if (inbound.path === '/healthz') return { status: 200, headers: { 'content-type': JSON_CONTENT_TYPE }, body: '{"status":"ok"}' };
    if (lifecycle.shuttingDown) throw new TunnelError('shutting_down');
    // Spooling is the tunnel doing its job, so readiness stays 200; the depth tells how far behind Sentry is.
    const stats = spool?.stats();
    // A full spool cannot keep the promise that nothing is lost: send traffic to another replica.
    if (stats?.full) throw new TunnelError('spool_full');
    const ready = stats ? { status: 'ready', spool: { envelopes: stats.envelopes, bytes: stats.bytes } } : { status: 'ready' };
    return { status: 200, headers: { 'content-type': JSON_CONTENT_TYPE }, body: JSON.stringify(ready) };
  };
}

export function metricsEndpoint(endpoint: MetricsEndpoint) {
  return async ({ inbound }: Exchange): Promise<Answer> => {
    if (inbound.method !== 'GET' && inbound.method !== 'HEAD') throw new TunnelError('method_not_allowed', GET_ONLY);
    const body = await endpoint.render();
    return { status: 200, headers: { 'content-type': endpoint.contentType, 'cache-control': 'no-store' }, body };
  };
}

export async function notFound(): Promise<Answer> {
  throw new TunnelError('not_found');
}
