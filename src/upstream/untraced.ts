// Keeps the tunnel's own calls to Sentry out of the host app's tracing. An app that embeds the tunnel
// usually runs @sentry/node, whose undici instrumentation (diagnostics channels, global to the process)
// would add sentry-trace/baggage headers, breadcrumbs and spans to every forward. It honours
// OpenTelemetry's "suppress tracing" context key, as every OpenTelemetry instrumentation does; both
// the key and the context API are process-wide registrations, so no OpenTelemetry import is needed.
import type { Forward } from './upstream.js';

interface ContextManager {
  active(): { setValue(key: symbol, value: unknown): unknown };
  with<T>(context: unknown, fn: () => T): T;
}

/** @opentelemetry/api registers itself here; @opentelemetry/core's suppressTracing() sets this key. */
const OTEL_API = Symbol.for('opentelemetry.js.api.1');
const SUPPRESS_TRACING = Symbol.for('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

function contextManager(): ContextManager | undefined {
  const api = (globalThis as Record<symbol, { context?: ContextManager } | undefined>)[OTEL_API];
  return typeof api?.context?.with === 'function' ? api.context : undefined;
}

/** `forward`, called with tracing suppressed whenever an OpenTelemetry context manager is registered. */
export function untraced(forward: Forward): Forward {
  return (envelope) => {
    // Looked up per call: the app's SDK may be initialised after the tunnel was created.
    const manager = contextManager();
    if (!manager) return forward(envelope);
    return manager.with(manager.active().setValue(SUPPRESS_TRACING, true), () => forward(envelope));
  };
}
