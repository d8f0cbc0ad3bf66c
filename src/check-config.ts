// `sentry-tunnel check-config`: validate the configuration exactly as `serve` loads it, without
// opening a socket, and say what the tunnel would do.
import { ConfigError, type ConfigFlags, loadConfig } from './load-config.js';
import { ProjectRegistry } from './projects.js';
import { redactedEnvelopeUrl } from './dsn.js';
import { resolve } from 'node:path';
import { spoolDirProblem } from './spool-files.js';

export async function checkConfig(flags: ConfigFlags): Promise<number> {
  try {
    const { config, file } = await loadConfig(flags);
    const projects = new ProjectRegistry(config.projects);
    const lines = [
      `✔ configuration is valid (${file ?? 'from flags and environment'})`,
      `  listen: http://${config.server.host}:${config.server.port}${config.server.path}`,
      ...[...projects.byName.values()].map((project) => `  project ${project.name}: ${redactedEnvelopeUrl(project.dsn)}`),
    ];
    if (config.spool.dir !== undefined) {
      const dir = resolve(config.spool.dir);
      const problem = await spoolDirProblem(dir);
      // A warning, not a failure: the directory may be mounted or created on the machine that runs serve.
      if (problem) process.stderr.write(`⚠ spool.dir ${dir} cannot be used here: ${problem}; serve would refuse to start\n`);
      else lines.push(`  spool: ${dir} (at most ${config.spool.maxBytes} bytes, ${config.spool.maxAgeMs} ms)`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`✘ ${error.message}\n`);
    return error.kind === 'invalid' ? 1 : 2;
  }
}
