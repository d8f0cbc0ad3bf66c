// The public API: named re-exports only.
export { startTunnel, StartupError, type RunningTunnel, type StartOptions } from './server.js';
export { loadConfig, validateConfig, ConfigError, type ConfigFlags, type ConfigProblem, type LoadedConfig } from './load-config.js';
export { configSchema, type Config, type ConfigInput } from './config.js';
export { configJsonSchema } from './json-schema.js';
export { ERRORS, TunnelError, type ErrorCode } from './errors.js';
export { parseDsn, normalizeDsn, envelopeTarget, type Dsn } from './dsn.js';
export { createLogger } from './logger.js';
export { Upstream, type Forward, type OutboundEnvelope, type UpstreamReply } from './upstream.js';
export { TunnelMetrics, type SpoolStats, type QueueStats } from './metrics.js';
export { main, createProgram } from './cli.js';
