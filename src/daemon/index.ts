// The daemon's API (`sentry-tunnel/daemon`): start the listener in-process, load configuration as the
// CLI does, run the CLI.
export { startTunnel, StartupError, type RunningTunnel, type StartOptions } from './server.js';
export { loadConfig, type ConfigFlags, type LoadedConfig } from '../config/load.js';
export { configJsonSchema } from '../config/json-schema.js';
export { main, createProgram } from './cli.js';
