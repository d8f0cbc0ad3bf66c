// The embedding API: named re-exports only. Nothing here loads the CLI (commander, cosmiconfig,
// pino-pretty): bundlers pull in whatever this entry imports. The daemon is `sentry-tunnel/daemon`.
export { createTunnel, type FetchInfo, type NextFunction, type Tunnel, type TunnelConfig, type TunnelOptions } from './tunnel.js';
export { validateConfig, ConfigError, type ConfigErrorKind } from './config/validate.js';
export type { ConfigProblem } from './config/problems.js';
export { configSchema, type Config, type ConfigInput } from './config/schema.js';
export { ERRORS, TunnelError, type ErrorCode } from './errors.js';
export { parseDsn, normalizeDsn, envelopeTarget, type Dsn } from './core/dsn.js';
export { createLogger, type Logger } from './observability/logger.js';
export type { Forward, OutboundEnvelope, UpstreamReply } from './upstream/upstream.js';
