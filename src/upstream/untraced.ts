// Keeps the tunnel's own calls to Sentry out of the host app's tracing. An app that embeds the tunnel
// usually runs @sentry/node, whose undici instrumentation (diagnostics channels, global to the process)
// would add sentry-trace/baggage headers, breadcrumbs and spans to every forward. Both ways of saying
// "not this call" are process-wide registrations, so neither needs an import (nor a matching version):
// - the Sentry SDK's own suppressTracing(): a scope flag set through the async-context strategy each
//   SDK version registers on the global carrier (globalThis.__SENTRY__[version].acs);
// - OpenTelemetry's suppress-tracing context key, which every OpenTelemetry instrumentation honours.
// Suppressed, @sentry/node still writes an unsampled sentry-trace header on the request it sees created;
// the tunnel takes such headers off its own requests just before undici writes them.
import { channel } from 'node:diagnostics_channel';
import type { Send } from './upstream.js';

type Run<T> = () => T;

interface Scope {
  setSDKProcessingMetadata(metadata: Record<string, unknown>): void;
}

interface AsyncContextStrategy {
  withScope<T>(callback: (scope: Scope) => T): T;
}

interface ContextManager {
  active(): { setValue(key: symbol, value: unknown): unknown };
  with<T>(context: unknown, fn: () => T): T;
}

/** @sentry/core's SUPPRESS_TRACING_KEY (tracing/constants.ts). */
const SENTRY_SUPPRESS_TRACING = '__SENTRY_SUPPRESS_TRACING__';
/** @opentelemetry/api registers itself here; @opentelemetry/core's suppressTracing() sets this key. */
const OTEL_API = Symbol.for('opentelemetry.js.api.1');
const OTEL_SUPPRESS_TRACING = Symbol.for('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

function sentryStrategies(): AsyncContextStrategy[] {
  const carrier = (globalThis as { __SENTRY__?: Record<string, unknown> }).__SENTRY__;
  if (!carrier) return [];
  const strategies: AsyncContextStrategy[] = [];
  for (const entry of Object.values(carrier)) {
    const acs = (entry as { acs?: Partial<AsyncContextStrategy> } | null)?.acs;
    if (typeof acs?.withScope === 'function') strategies.push(acs as AsyncContextStrategy);
  }
  return strategies;
}

function contextManager(): ContextManager | undefined {
  const api = (globalThis as Record<symbol, { context?: ContextManager } | undefined>)[OTEL_API];
  return typeof api?.context?.with === 'function' ? api.context : undefined;
}

/** Runs `run` with tracing suppressed for every tracer this process has registered (none: as it is). */
export function withoutTracing<T>(run: Run<T>): T {
  let wrapped = run;
  for (const acs of sentryStrategies()) {
    const inner = wrapped;
    wrapped = () =>
      acs.withScope((scope) => {
        scope.setSDKProcessingMetadata({ [SENTRY_SUPPRESS_TRACING]: true });
        return inner();
      });
  }
  const manager = contextManager();
  if (manager) {
    const inner = wrapped;
    wrapped = () => manager.with(manager.active().setValue(OTEL_SUPPRESS_TRACING, true), inner);
  }
  return wrapped();
}

/** undici publishes every request it creates here; instrumentations (Sentry's, OpenTelemetry's) listen. */
const requestCreated = channel('undici:request:create');
/** Marks the tunnel's own requests until undici has created them; never sent. */
const MARKER = 'x-sentry-tunnel-untraced';
const TRACING_HEADERS: ReadonlySet<string> = new Set([MARKER, 'sentry-trace', 'baggage', 'traceparent', 'tracestate']);
let listening = false;

interface UndiciRequest {
  headers: unknown;
  onConnect(...args: unknown[]): unknown;
}

/** Header pairs [name, value, …] without the tracing headers, in place (undici serialises this array). */
function stripTracingHeaders(headers: unknown): boolean {
  if (!Array.isArray(headers)) return false;
  let write = 0;
  let found = false;
  for (let read = 0; read < headers.length; read += 2) {
    if (TRACING_HEADERS.has(String(headers[read]).toLowerCase())) {
      found ||= headers[read] === MARKER;
      continue;
    }
    headers[write++] = headers[read];
    headers[write++] = headers[read + 1];
  }
  headers.length = write;
  return found;
}

function onRequestCreated(message: unknown): void {
  const request = (message as { request?: UndiciRequest }).request;
  if (!request || !stripTracingHeaders(request.headers)) return;
  // Subscribers after this one may still add headers: take them off again when the request is written.
  const onConnect = request.onConnect;
  request.onConnect = function (this: UndiciRequest, ...args: unknown[]) {
    stripTracingHeaders(this.headers);
    return onConnect.apply(this, args);
  };
}

/**
 * `send` with tracing suppressed; looked up per call, as the app's SDK may start after the tunnel.
 * Costs nothing while nobody listens to undici's requests (the daemon). undici creates the request
 * inside dispatch(), so within the suppressed scope.
 */
export function untraced(send: Send): Send {
  return (envelope, sink) => {
    if (!requestCreated.hasSubscribers) return send(envelope, sink);
    if (!listening) {
      listening = true;
      requestCreated.subscribe(onRequestCreated);
    }
    withoutTracing(() => send({ ...envelope, headers: { ...envelope.headers, [MARKER]: '1' } }, sink));
  };
}
