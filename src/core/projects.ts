// The allowlist: which configured project an envelope's DSN belongs to, and where that project's
// envelopes go upstream. Built once from the frozen config; lookups are a Map hit.
import type { Config } from '../config/schema.js';
import { type Dsn, type UpstreamTarget, envelopeTarget, normalizeDsn, parseDsn, redactDsn } from './dsn.js';

export interface Project {
  readonly name: string;
  readonly dsn: Dsn;
  readonly target: UpstreamTarget;
  /** The DSN with its key shortened, safe for logs. */
  readonly redactedDsn: string;
}

export class ProjectRegistry {
  readonly byName: ReadonlyMap<string, Project>;
  readonly #byDsn = new Map<string, Project>();
  /** DSN strings exactly as configured (and as SDKs send them), to skip parsing in the common case. */
  readonly #byRawDsn = new Map<string, Project>();

  constructor(projects: Config['projects']) {
    const byName = new Map<string, Project>();
    for (const [name, { dsn: raw }] of Object.entries(projects)) {
      const parsed = parseDsn(raw);
      if (!parsed.ok) throw new Error(`projects.${name}.dsn: not a valid DSN: ${parsed.reason}`);
      const project: Project = { name, dsn: parsed.dsn, target: envelopeTarget(parsed.dsn), redactedDsn: redactDsn(parsed.dsn) };
      byName.set(name, project);
      this.#byDsn.set(normalizeDsn(parsed.dsn), project);
      this.#byRawDsn.set(raw, project);
    }
    this.byName = byName;
  }

  /**
   * The project a client-sent DSN belongs to: `undefined` when it is valid but not configured,
   * `null` when it does not parse.
   */
  resolve(clientDsn: string): Project | undefined | null {
    const exact = this.#byRawDsn.get(clientDsn);
    if (exact) return exact;
    const parsed = parseDsn(clientDsn);
    if (!parsed.ok) return null;
    return this.#byDsn.get(normalizeDsn(parsed.dsn));
  }

  /** The distinct upstream origins, for connection pools and the start-up line. */
  origins(): string[] {
    return [...new Set([...this.byName.values()].map((project) => project.target.origin))];
  }
}
