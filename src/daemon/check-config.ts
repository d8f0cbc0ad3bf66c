// `sentry-tunnel check-config`: load the configuration exactly as `serve` does, validate it without
// opening a socket, list every problem and warning, and say what the tunnel would do.
// Exit 0 valid, 1 invalid (or warnings under --strict), 2 no configuration found.
import { type ConfigSummary, formatSummary, summarizeConfig } from '../config/summary.js';
import { configWarnings, machineWarnings } from '../config/warnings.js';
import { ConfigError, type ConfigFlags, type ConfigProblem, formatProblem, loadConfig } from '../config/load.js';

export interface CheckConfigOptions extends ConfigFlags {
  json?: boolean;
  strict?: boolean;
}

/** The --json document, one per run. */
export interface CheckConfigReport {
  /** False when there are errors, or warnings under --strict: the check failed. */
  readonly valid: boolean;
  readonly file: string | null;
  readonly errors: readonly ConfigProblem[];
  readonly warnings: readonly ConfigProblem[];
  readonly summary: ConfigSummary | null;
}

export async function checkConfig(options: CheckConfigOptions): Promise<number> {
  const { code, report, headline } = await check(options);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return code;
  }
  const lines = [headline];
  if (code !== 2) lines.push(...report.errors.map((problem) => `  ${formatProblem(problem)}`));
  if (report.summary) lines.push('', ...formatSummary(report.summary));
  if (report.warnings.length > 0) {
    lines.push('', `⚠ ${plural(report.warnings.length, 'warning')}${options.strict ? ' (--strict: the check fails)' : ''}:`);
    lines.push(...report.warnings.map((warning) => `  ${formatProblem(warning)}`));
  }
  (code === 2 ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
  return code;
}

async function check(options: CheckConfigOptions): Promise<{ code: number; report: CheckConfigReport; headline: string }> {
  try {
    const { config, file } = await loadConfig(options);
    const warnings = [...configWarnings(config), ...(await machineWarnings(config))];
    const failed = options.strict === true && warnings.length > 0;
    const where = file ?? 'from flags and environment';
    return {
      code: failed ? 1 : 0,
      report: { valid: !failed, file: file ?? null, errors: [], warnings, summary: summarizeConfig(config, file) },
      headline: failed
        ? `✘ configuration is valid but has ${plural(warnings.length, 'warning')}, which --strict does not allow: ${where}`
        : `✔ configuration is valid: ${where}`,
    };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const file = error.file ?? null;
    if (error.kind === 'not_found') {
      const problem = { path: '', message: error.message };
      return { code: 2, report: { valid: false, file, errors: [problem], warnings: [], summary: null }, headline: `✘ ${error.message}` };
    }
    const errors = error.problems.length > 0 ? error.problems : [{ path: '', message: error.message }];
    const headline =
      error.kind === 'unreadable'
        ? `✘ cannot read the configuration${file ? ` ${file}` : ''}:`
        : `✘ invalid configuration${file ? ` in ${file}` : ''} — ${plural(errors.length, 'problem')}:`;
    return { code: 1, report: { valid: false, file, errors, warnings: [], summary: null }, headline };
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
