// The public API: named re-exports only.
export { startTunnel, StartupError, type RunningTunnel, type StartOptions } from './daemon/server.js';
export { loadConfig, validateConfig, ConfigError, type ConfigFlags, type ConfigProblem, type LoadedConfig } from './config/load.js';
export { configSchema, type Config, type ConfigInput } from './config/schema.js';
export { configJsonSchema } from './config/json-schema.js';
export { ERRORS, TunnelError, type ErrorCode } from './errors.js';
export { parseDsn, normalizeDsn, envelopeTarget, type Dsn } from './core/dsn.js';
export { createLogger } from './observability/logger.js';
export { Upstream, type Forward, type OutboundEnvelope, type UpstreamReply } from './upstream/upstream.js';
export { TunnelMetrics, type SpoolStats, type QueueStats } from './observability/metrics.js';
export { main, createProgram } from './daemon/cli.js';
