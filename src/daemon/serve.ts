// `sentry-tunnel serve`: load the configuration, start the tunnel, stop gracefully on SIGTERM/SIGINT.
import { ConfigError, type ConfigFlags, loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { StartupError, startTunnel } from './server.js';

export async function serve(flags: ConfigFlags): Promise<number> {
  let loaded;
  try {
    loaded = await loadConfig(flags);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger(loaded.config.log);
  if (loaded.file) logger.debug({ file: loaded.file }, 'configuration loaded');

  let tunnel;
  try {
    tunnel = await startTunnel(loaded.config, { logger });
  } catch (error) {
    if (error instanceof StartupError) {
      logger.flush();
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  logger.flush(); // the "listening" line, now: supervisors and scripts wait for it

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal means "now": skip the graceful wait.
        logger.warn({ signal }, 'second signal: exiting immediately');
        logger.flush();
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
      stopping = true;
      logger.info({ signal }, 'signal received');
      tunnel.shutdown().then(
        () => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          logger.flush(() => resolve(0));
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          logger.flush(() => resolve(1));
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
