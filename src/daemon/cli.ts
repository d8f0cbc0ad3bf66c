// The command line: `serve`, `check-config`, `send-test`. Each command loads only the modules it
// needs (start-up time matters for CI checks), and failures map to exit codes here:
// 0 ok, 1 failure (invalid config in check-config, port in use, event not accepted), 2 usage or no config.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CheckConfigOptions } from './check-config.js';
import type { ConfigFlags } from '../config/load.js';
import type { SendTestOptions } from './send-test.js';
import { version } from '../version.js';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function createProgram(): Command {
  const program = new Command()
    .name('sentry-tunnel')
    .description('Forward Sentry envelopes from browser SDKs to your configured Sentry projects only, byte-exact.')
    .version(version, '-v, --version', 'print the version')
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) })
    .exitOverride();

  program
    .command('serve')
    .description('run the tunnel daemon')
    .addOption(configOption())
    .addOption(hostOption())
    .addOption(portOption())
    .addOption(dsnOption())
    .addOption(new Option('--log-level <level>', 'log level (overrides log.level, $SENTRY_TUNNEL_LOG_LEVEL)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .option('--pretty', 'human-readable logs (log.format "pretty")')
    .addHelpText('after', '\nConfiguration is searched in the current directory (package.json "sentry-tunnel" key, .sentry-tunnelrc[.json|.yaml|.js], sentry-tunnel.config.{json,js,cjs,mjs}).\nFlags win over environment variables, which win over the file.')
    .action(async (options: ConfigFlags) => {
      const { serve } = await import('./serve.js');
      process.exitCode = await serve(options);
    });

  program
    .command('check-config')
    .description('validate the configuration without starting the tunnel (for CI)')
    .addOption(configOption())
    .addOption(hostOption())
    .addOption(portOption())
    .addOption(dsnOption())
    .option('--json', 'print one JSON document: { valid, file, errors, warnings, summary }')
    .option('--strict', 'fail on warnings too')
    .addHelpText('after', '\nLoads the configuration exactly as `serve` does (same files, environment and flags) and opens no socket.\nExit codes: 0 valid, 1 invalid (or warnings with --strict), 2 no configuration found.')
    .action(async (options: CheckConfigOptions) => {
      const { checkConfig } = await import('./check-config.js');
      process.exitCode = await checkConfig(options);
    });

  program
    .command('send-test')
    .description('send a test event through a running tunnel and explain what went wrong')
    .addOption(configOption())
    .option('--url <url>', 'tunnel URL (default: from the configuration\'s server.host, port and path)')
    .option('--project <name>', 'project whose DSN the event carries (default: the first)')
    .option('--dsn <dsn>', 'DSN to put in the envelope (default: the project\'s)')
    .option('--message <text>', 'message of the test event')
    .option('--origin <origin>', 'send a CORS preflight and the POST with this Origin, as a browser on that site does')
    .option('--timeout <ms>', 'give up waiting for an answer after this long (default: upstream.timeoutMs + 5000)', parsePositiveInt)
    .option('--direct', 'send the envelope straight to Sentry, bypassing the tunnel')
    .option('--json', 'print one JSON document with the steps, the answer and the diagnosis')
    .addHelpText('after', '\nExit codes: 0 Sentry accepted the event, 1 it did not (the output says why and what to do), 2 usage error.')
    .action(async (options: SendTestOptions) => {
      const { sendTest } = await import('./send-test.js');
      process.exitCode = await sendTest(options);
    });

  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    const code = (error as { code?: string; exitCode?: number }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return EXIT.ok;
    if (typeof code === 'string' && code.startsWith('commander.')) return EXIT.usage;
    throw error;
  }
}

function configOption(): Option {
  return new Option('-c, --config <file>', 'configuration file (default: searched in the current directory)');
}

function hostOption(): Option {
  return new Option('--host <host>', 'address to listen on (overrides server.host, $SENTRY_TUNNEL_HOST)');
}

function portOption(): Option {
  return new Option('--port <port>', 'port to listen on (overrides server.port, $SENTRY_TUNNEL_PORT)').argParser(parsePort);
}

function dsnOption(): Option {
  return new Option('--dsn <dsn>', 'forward to this DSN (repeatable; adds a project named after its project id)').argParser(collect).default([]);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parsePositiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a whole number ≥ 1');
  return Number(value);
}

function parsePort(value: string): string {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('port must be 1–65535');
  return value;
}
