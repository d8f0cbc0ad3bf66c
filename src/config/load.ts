// Where configuration comes from: the file cosmiconfig finds (or --config), ${VAR} interpolation,
// environment overrides, flag overrides — then one validation that reports every problem, then freeze.
import { resolve } from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import type { Config } from './schema.js';
import type { ConfigProblem } from './problems.js';
import { ConfigError, validateConfig } from './validate.js';
import { normalizeDsn, parseDsn } from '../core/dsn.js';

export { type ConfigProblem, formatProblem } from './problems.js';
export { ConfigError, type ConfigErrorKind, validateConfig } from './validate.js';

export const MODULE_NAME = 'sentry-tunnel';

export const SEARCH_PLACES = [
  'package.json',
  `.${MODULE_NAME}rc`,
  `.${MODULE_NAME}rc.json`,
  `.${MODULE_NAME}rc.yaml`,
  `.${MODULE_NAME}rc.yml`,
  `.${MODULE_NAME}rc.js`,
  `.${MODULE_NAME}rc.cjs`,
  `.${MODULE_NAME}rc.mjs`,
  `${MODULE_NAME}.config.json`,
  `${MODULE_NAME}.config.js`,
  `${MODULE_NAME}.config.cjs`,
  `${MODULE_NAME}.config.mjs`,
];

/** Overrides given on the command line; each wins over environment and file. */
export interface ConfigFlags {
  config?: string;
  host?: string;
  port?: string | number;
  dsn?: readonly string[];
  logLevel?: string;
  pretty?: boolean;
}

export interface LoadedConfig {
  readonly config: Config;
  /** Absolute path of the file used, or undefined when everything came from flags and environment. */
  readonly file: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;
type Json = Record<string, unknown>;

export async function loadConfig(flags: ConfigFlags = {}, env: Env = process.env, cwd = process.cwd()): Promise<LoadedConfig> {
  const { raw, file } = await readConfigFile(flags.config, cwd);
  const problems: ConfigProblem[] = [];
  const interpolated = interpolate(raw, env, [], problems) as Json;
  const layered = applyOverrides(interpolated, environmentOverrides(env), flagOverrides(flags));

  if (file === undefined && !hasProjects(layered)) {
    throw new ConfigError(
      'not_found',
      [],
      undefined,
      `No configuration found. Looked for ${SEARCH_PLACES.join(', ')} in ${cwd}, ` +
        'and for SENTRY_TUNNEL_DSNS / SENTRY_ALLOWED_DSNS in the environment. ' +
        'Pass --config <file> or --dsn <dsn>.',
    );
  }
  return { config: validateConfig(layered, file, problems), file };
}

async function readConfigFile(path: string | undefined, cwd: string): Promise<{ raw: Json; file: string | undefined }> {
  const explorer = cosmiconfig(MODULE_NAME, { searchPlaces: SEARCH_PLACES, searchStrategy: 'none', cache: false });
  try {
    const result = path === undefined ? await explorer.search(cwd) : await explorer.load(resolve(cwd, path));
    if (!result) return { raw: {}, file: undefined };
    if (result.isEmpty || result.config === null || result.config === undefined) return { raw: {}, file: result.filepath };
    if (typeof result.config !== 'object' || Array.isArray(result.config)) {
      throw new ConfigError('invalid', [{ path: '', message: 'the configuration must be an object' }], result.filepath, `${result.filepath}: the configuration must be an object`);
    }
    return { raw: result.config as Json, file: result.filepath };
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const file = path === undefined ? undefined : resolve(cwd, path);
    if (code === 'ENOENT') {
      throw new ConfigError('not_found', [], file, `Configuration file not found: ${file ?? path}`);
    }
    // cosmiconfig's parse errors span lines ("JSON Error in <file>:\n<reason>"); one problem is one line.
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
    throw new ConfigError('unreadable', [{ path: '', message }], file, `Cannot read configuration${file ? ` ${file}` : ''}: ${message}`);
  }
}

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces ${VAR} (and ${VAR:-default}) in every string of the file; an unset variable is a problem at its path. */
function interpolate(value: unknown, env: Env, path: readonly string[], problems: ConfigProblem[]): unknown {
  if (typeof value === 'string') {
    return value.replace(VARIABLE, (whole, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push({ path: path.join('.'), message: `environment variable ${name} is not set`, hint: `set ${name} or write ${'${'}${name}:-default}` });
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, env, [...path, String(index)], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, env, [...path, key], problems)]));
  }
  return value;
}

interface Overrides {
  host?: string;
  port?: unknown;
  dsns?: readonly string[];
  logLevel?: string;
  logRequests?: string;
  format?: 'pretty';
  upstreamTimeoutMs?: unknown;
  drainDelayMs?: unknown;
}

function environmentOverrides(env: Env): Overrides {
  const dsns = [env.SENTRY_TUNNEL_DSNS, env.SENTRY_ALLOWED_DSNS].flatMap((list) => splitList(list));
  return {
    host: env.SENTRY_TUNNEL_HOST || undefined,
    port: numberish(env.SENTRY_TUNNEL_PORT),
    dsns,
    logLevel: env.SENTRY_TUNNEL_LOG_LEVEL || undefined,
    logRequests: env.SENTRY_TUNNEL_LOG_REQUESTS || undefined,
    upstreamTimeoutMs: numberish(env.TUNNEL_TIMEOUT),
    drainDelayMs: numberish(env.SENTRY_TUNNEL_DRAIN_DELAY_MS),
  };
}

function flagOverrides(flags: ConfigFlags): Overrides {
  return {
    host: flags.host,
    port: numberish(flags.port),
    dsns: flags.dsn ?? [],
    logLevel: flags.logLevel,
    format: flags.pretty ? 'pretty' : undefined,
  };
}

function applyOverrides(base: Json, ...layers: Overrides[]): Json {
  const config: Json = structuredClone(base);
  const section = (name: string): Json => {
    const existing = config[name];
    const copy: Json = existing !== null && typeof existing === 'object' && !Array.isArray(existing) ? { ...(existing as Json) } : {};
    config[name] = copy;
    return copy;
  };
  for (const layer of layers) {
    if (layer.host !== undefined) section('server').host = layer.host;
    if (layer.port !== undefined) section('server').port = layer.port;
    if (layer.logLevel !== undefined) section('log').level = layer.logLevel;
    if (layer.logRequests !== undefined) section('log').requests = layer.logRequests;
    if (layer.format !== undefined) section('log').format = layer.format;
    if (layer.upstreamTimeoutMs !== undefined) section('upstream').timeoutMs = layer.upstreamTimeoutMs;
    if (layer.drainDelayMs !== undefined) section('server').drainDelayMs = layer.drainDelayMs;
    if (layer.dsns && layer.dsns.length > 0) addDsnProjects(section('projects'), layer.dsns);
  }
  return config;
}

/** --dsn / SENTRY_TUNNEL_DSNS add a project named after the DSN's project id, unless the DSN is already configured. */
function addDsnProjects(projects: Json, dsns: readonly string[]): void {
  const known = new Set<string>();
  for (const project of Object.values(projects)) {
    const dsn = (project as { dsn?: unknown } | null)?.dsn;
    const parsed = typeof dsn === 'string' ? parseDsn(dsn) : undefined;
    if (parsed?.ok) known.add(normalizeDsn(parsed.dsn));
  }
  for (const dsn of dsns) {
    const parsed = parseDsn(dsn);
    if (parsed.ok && known.has(normalizeDsn(parsed.dsn))) continue;
    const base = parsed.ok ? parsed.dsn.projectId : 'dsn';
    let name = base;
    for (let n = 2; name in projects; n++) name = `${base}-${n}`;
    projects[name] = { dsn };
    if (parsed.ok) known.add(normalizeDsn(parsed.dsn));
  }
}

function hasProjects(config: Json): boolean {
  const projects = config.projects;
  return projects !== null && typeof projects === 'object' && Object.keys(projects).length > 0;
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');
}

/** Numbers from the command line and environment; anything else is passed on for the schema to reject. */
function numberish(value: string | number | undefined): unknown {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'number') return value;
  return /^\d+$/.test(value.trim()) ? Number(value) : value;
}
