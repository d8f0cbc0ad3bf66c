// Validation of a raw configuration object against the schema: every problem listed with its path,
// then the result frozen. Shared by the CLI's loader and createTunnel (which must not load cosmiconfig).
import { type Config, configSchema } from './schema.js';
import { type ConfigProblem, formatProblem, toProblems } from './problems.js';

export type ConfigErrorKind = 'invalid' | 'not_found' | 'unreadable';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly kind: ConfigErrorKind,
    readonly problems: readonly ConfigProblem[],
    readonly file: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const validated = new WeakSet<object>();

/** Whether `value` came out of validateConfig (and so needs no second look). */
export function isValidatedConfig(value: unknown): value is Config {
  return typeof value === 'object' && value !== null && validated.has(value);
}

/** Validates a raw configuration object; throws ConfigError listing every problem (plus `earlier` ones). */
export function validateConfig(raw: unknown, file?: string, earlier: readonly ConfigProblem[] = []): Config {
  const result = configSchema.safeParse(raw);
  // An unset ${VAR} already explains why the value at its path is wrong: say it once.
  const explained = new Set(earlier.map((problem) => problem.path));
  const found = result.success ? [] : result.error.issues.flatMap((issue) => toProblems(issue, raw)).filter((problem) => !explained.has(problem.path));
  const problems = [...earlier, ...found];
  if (problems.length > 0 || !result.success) {
    const where = file ? ` in ${file}` : '';
    const lines = problems.map((problem) => `  ${formatProblem(problem)}`);
    throw new ConfigError('invalid', problems, file, `Invalid configuration${where}:\n${lines.join('\n')}`);
  }
  const config = deepFreeze(result.data);
  validated.add(config);
  return config;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
