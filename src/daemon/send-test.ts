// `sentry-tunnel send-test`: send a real SDK-shaped event through a running tunnel (or, with --direct,
// straight to Sentry) the way a browser does, show each step, and on failure say why and what to do.
// Exit 0 Sentry accepted the event, 1 it did not, 2 usage error (bad flags, no usable configuration).
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { parseDsn, redactDsn } from '../core/dsn.js';
import { canonicalPath } from '../core/routes.js';
import { ConfigError, type LoadedConfig, loadConfig } from '../config/load.js';
import {
  type Diagnosis,
  type DiagnosisContext,
  type HttpAnswer,
  diagnoseAnswer,
  diagnoseNetworkError,
  diagnosePreflight,
  diagnoseSpooled,
  sentryError,
  tunnelCode,
} from './send-test-diagnosis.js';
import { TEST_TAG, buildTestEnvelope } from './test-event.js';
import { version } from '../version.js';

export interface SendTestOptions {
  config?: string;
  url?: string;
  project?: string;
  dsn?: string;
  message?: string;
  origin?: string;
  timeout?: number;
  direct?: boolean;
  json?: boolean;
}

type StepName = 'config' | 'envelope' | 'reachable' | 'preflight' | 'tunnel' | 'sentry';

interface Step {
  readonly name: StepName;
  /** null: skipped. */
  readonly ok: boolean | null;
  readonly detail: string;
}

class UsageError extends Error {}

const DEFAULT_TIMEOUT_MS = 15_000;

export async function sendTest(options: SendTestOptions): Promise<number> {
  const via = options.direct ? 'direct' : 'tunnel';
  const run = new Run(via, options.json === true);
  try {
    return await attempt(options, run);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    run.finish({ ok: false, diagnosis: { cause: 'usage', problem: error.message, fix: 'See `sentry-tunnel send-test --help`.' } });
    return 2;
  }
}

async function attempt(options: SendTestOptions, run: Run): Promise<number> {
  if (options.direct && options.url) throw new UsageError('--url and --direct do not go together: --direct sends to the DSN\'s Sentry, not to a URL.');
  const loaded = await loadIfNeeded(options, run);
  const config = loaded?.config;

  let project: string | undefined;
  if (options.project !== undefined) {
    if (!config) throw new UsageError('--project needs a configuration to look the project up in (pass --config).');
    if (!(options.project in config.projects)) {
      throw new UsageError(`No project named "${options.project}" in the configuration; there are: ${Object.keys(config.projects).join(', ')}.`);
    }
    project = options.project;
  } else if (config && options.dsn === undefined) project = Object.keys(config.projects)[0];
  const dsn = options.dsn ?? (project !== undefined && config ? config.projects[project]?.dsn : undefined);
  if (dsn === undefined) throw new UsageError('No DSN to send with: pass --dsn, or a configuration with projects.');
  const parsedDsn = parseDsn(dsn);
  if (!parsedDsn.ok) throw new UsageError(`--dsn is not a valid DSN: ${parsedDsn.reason}.`);

  const viaTunnel = run.via === 'tunnel' ? tunnelUrl(options.url, loaded) : undefined;
  const origin = options.origin === undefined ? undefined : parseOrigin(options.origin);

  const envelope = await buildTestEnvelope({ dsn, message: options.message ?? `sentry-tunnel send-test (${new Date().toISOString()})` });
  if (!envelope) throw new UsageError('The Sentry SDK does not accept this DSN.');
  run.eventId = envelope.eventId;
  const bytes = Buffer.byteLength(envelope.body);
  run.step('envelope', true, `event ${envelope.eventId}, ${bytes} bytes, DSN ${redactDsn(parsedDsn.dsn)}${project ? ` (project "${project}")` : ''}`);

  const url = viaTunnel ?? new URL(envelope.directUrl);
  run.url = redactKey(url);
  const proxyNote = viaTunnel && loaded && options.url !== undefined ? untrustedProxyNote(viaTunnel, loaded.config.server) : undefined;
  if (proxyNote) run.notes.push(proxyNote);
  const timeoutMs = options.timeout ?? (config ? config.upstream.timeoutMs + 5_000 : DEFAULT_TIMEOUT_MS);
  const ctx: DiagnosisContext = {
    via: run.via,
    url,
    sentryHost: `${parsedDsn.dsn.host}${parsedDsn.dsn.port ? `:${parsedDsn.dsn.port}` : ''}`,
    project,
    origin,
    configuredPath: config && canonicalPath(config.server.path),
    configArg: options.config ? ` --config ${options.config}` : '',
    envelopeBytes: bytes,
    timeoutMs,
  };

  const agent = new Agent({ connect: { timeout: timeoutMs } });
  try {
    const common = { 'user-agent': `sentry-tunnel-send-test/${version}`, ...(origin ? { origin } : {}) };
    const send = (method: 'OPTIONS' | 'POST', headers: Record<string, string>, body?: string) =>
      exchange(agent, url, method, { ...common, ...headers }, body, timeoutMs);

    if (origin !== undefined && origin !== url.origin) {
      const preflight = await send('OPTIONS', { 'access-control-request-method': 'POST' });
      if ('error' in preflight) return run.fail('reachable', preflight.error.message, diagnoseNetworkError(preflight.error, ctx));
      run.step('reachable', true, `${url.origin} answered`);
      const refused = diagnosePreflight(preflight, ctx);
      if (refused) return run.fail('preflight', `${preflight.status}${describeCode(preflight, ctx)} for Origin ${origin}`, refused);
      run.step('preflight', true, `Origin ${origin}`);
    } else if (origin !== undefined) run.step('preflight', null, 'same origin: a browser sends no preflight');

    const started = performance.now();
    const answer = await send('POST', { 'content-type': 'text/plain;charset=UTF-8' }, envelope.body);
    if (!('error' in answer)) run.roundTripMs = Math.round(performance.now() - started);
    if ('error' in answer) {
      if (!run.has('reachable')) return run.fail('reachable', answer.error.message, diagnoseNetworkError(answer.error, ctx));
      return run.fail(run.via === 'direct' ? 'sentry' : 'tunnel', answer.error.message, diagnoseNetworkError(answer.error, ctx));
    }
    if (!run.has('reachable')) run.step('reachable', true, `${url.origin} answered`);
    run.response = answer;

    const code = tunnelCode(answer, run.via);
    const diagnosis = diagnoseAnswer(answer, ctx);
    if (run.via === 'tunnel') {
      if (code !== undefined) return run.fail('tunnel', `${answer.status} ${code} after ${String(run.roundTripMs)} ms`, diagnosis);
      const spooled = diagnoseSpooled(answer, ctx);
      if (spooled) {
        run.step('tunnel', true, `answered ${answer.status} after ${String(run.roundTripMs)} ms, but kept the event in its spool`);
        return run.fail('sentry', `not reached: ${spooled.spoolCause}`, spooled.diagnosis);
      }
      run.step('tunnel', true, `forwarded; Sentry's answer came back after ${String(run.roundTripMs)} ms`);
    }
    if (diagnosis) return run.fail('sentry', `${answer.status}${sentryError(answer) ? ` "${sentryError(answer)}"` : ''}`, diagnosis);
    const id = acceptedId(answer) ?? envelope.eventId;
    run.step('sentry', true, `accepted: event id ${id} (in Sentry, search for it or for ${TEST_TAG}:true)`);
    run.finish({ ok: true, diagnosis: undefined });
    return 0;
  } finally {
    await agent.destroy();
  }
}

async function loadIfNeeded(options: SendTestOptions, run: Run): Promise<LoadedConfig | undefined> {
  const needed = options.config !== undefined || options.dsn === undefined || (!options.direct && options.url === undefined);
  if (!needed) {
    run.step('config', null, 'not needed (--dsn and the target given)');
    return undefined;
  }
  try {
    const loaded = await loadConfig({ config: options.config });
    run.step('config', true, loaded.file ?? 'from flags and environment');
    return loaded;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    run.step('config', false, error.kind === 'not_found' ? 'no configuration found' : 'the configuration is not usable');
    if (error.kind === 'not_found') throw new UsageError(`${error.message} Or pass --url and --dsn.`);
    throw new UsageError(`${error.message}\n\`sentry-tunnel check-config\` explains every problem.`);
  }
}

/** The tunnel URL: --url, or the configuration's listen address (every-interface addresses become loopback). */
function tunnelUrl(option: string | undefined, loaded: LoadedConfig | undefined): URL {
  if (option !== undefined) {
    let url: URL;
    try {
      url = new URL(option);
    } catch {
      throw new UsageError(`--url is not a URL: "${option}" (expected e.g. http://127.0.0.1:8080/tunnel).`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http:// or https://, not ${url.protocol}`);
    return url;
  }
  const server = (loaded as LoadedConfig).config.server;
  if (server.port === 0) throw new UsageError('server.port is 0 (the tunnel picks a free port at start): pass the URL it printed with --url.');
  const host = server.host === '0.0.0.0' ? '127.0.0.1' : server.host === '::' ? '::1' : server.host;
  return new URL(`http://${host.includes(':') ? `[${host}]` : host}:${server.port}${canonicalPath(server.path)}`);
}

/**
 * --url reaches the tunnel on another port than it listens on (a reverse proxy, most likely) while
 * server.trustProxy is false: then every visitor shares the proxy's address and one per-client budget.
 */
function untrustedProxyNote(url: URL, server: LoadedConfig['config']['server']): string | undefined {
  if (server.trustProxy !== false || server.port === 0) return undefined;
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  if (port === server.port) return undefined;
  return (
    `${url.host} is not the tunnel's own listener (port ${server.port}): if a reverse proxy forwards to it, set server.trustProxy to the proxy's address, ` +
    'or every visitor shares one per-client budget; the tunnel logs one warning naming that address when it sees X-Forwarded-For.'
  );
}

function parseOrigin(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
  } catch {
    // fall through to the usage error
  }
  throw new UsageError(`--origin must be a site's origin such as https://app.example.com, not "${value}".`);
}

type Exchanged = HttpAnswer | { error: { code?: string; name?: string; message: string } };

async function exchange(agent: Agent, url: URL, method: 'OPTIONS' | 'POST', headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<Exchanged> {
  try {
    const response = await request(url, { dispatcher: agent, method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.body.text();
    const flat: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return { status: response.statusCode, headers: flat, body: text.length > 4096 ? `${text.slice(0, 4096)}…` : text };
  } catch (error) {
    const { code, name, message } = error as { code?: unknown; name?: unknown; message?: unknown };
    return { error: { code: typeof code === 'string' ? code : undefined, name: typeof name === 'string' ? name : undefined, message: String(message ?? error) } };
  }
}

function describeCode(answer: HttpAnswer, ctx: DiagnosisContext): string {
  const code = tunnelCode(answer, ctx.via);
  return code ? ` ${code}` : '';
}

function acceptedId(answer: HttpAnswer): string | undefined {
  try {
    const id = (JSON.parse(answer.body) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

function redactKey(url: URL): string {
  const copy = new URL(url);
  const key = copy.searchParams.get('sentry_key');
  if (key) copy.searchParams.set('sentry_key', `${key.slice(0, 4)}…`);
  return copy.toString();
}

const LABELS: Record<StepName, (via: 'tunnel' | 'direct') => string> = {
  config: () => 'config loaded',
  envelope: () => 'test event built',
  reachable: (via) => (via === 'tunnel' ? 'tunnel reachable' : 'Sentry reachable'),
  preflight: () => 'preflight allowed',
  tunnel: () => 'tunnel response',
  sentry: () => 'Sentry\'s answer',
};

/** The steps of one run, printed as they happen (or as one JSON document at the end). */
class Run {
  readonly steps: Step[] = [];
  readonly notes: string[] = [];
  eventId: string | undefined;
  url: string | undefined;
  roundTripMs: number | undefined;
  response: HttpAnswer | undefined;

  constructor(
    readonly via: 'tunnel' | 'direct',
    readonly json: boolean,
  ) {}

  has(name: StepName): boolean {
    return this.steps.some((step) => step.name === name);
  }

  step(name: StepName, ok: boolean | null, detail: string): void {
    this.steps.push({ name, ok, detail });
    const mark = ok === null ? '–' : ok ? '✔' : '✘';
    if (!this.json) process.stdout.write(`${mark} ${LABELS[name](this.via).padEnd(18)} ${detail}\n`);
  }

  fail(name: StepName, detail: string, diagnosis: Diagnosis | undefined): number {
    this.step(name, false, detail);
    this.finish({ ok: false, diagnosis });
    return 1;
  }

  finish(result: { ok: boolean; diagnosis: Diagnosis | undefined }): void {
    if (this.json) {
      const response = this.response && { status: this.response.status, code: tunnelCode(this.response, this.via) ?? null, headers: this.response.headers, body: this.response.body };
      const document = {
        ok: result.ok,
        via: this.via,
        url: this.url ?? null,
        eventId: this.eventId ?? null,
        steps: this.steps,
        response: response ?? null,
        roundTripMs: this.roundTripMs ?? null,
        diagnosis: result.diagnosis ?? null,
        notes: this.notes,
      };
      process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
      return;
    }
    if (result.diagnosis?.cause === 'usage') {
      process.stderr.write(`✘ ${result.diagnosis.problem}\n`);
      return;
    }
    const lines: string[] = [];
    if (this.roundTripMs !== undefined) lines.push('', `round trip ${this.roundTripMs} ms`);
    for (const note of this.notes) lines.push('', `Note: ${note}`);
    if (result.diagnosis) lines.push('', `Problem: ${result.diagnosis.problem}`, `Fix:     ${result.diagnosis.fix}`);
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  }
}
